"""Signing in with Bluesky in a browser: a real `coop serve` (the loopback OAuth client), the
fake PDS and authorization server on loopback, Chromium following the whole round trip.

Set COOP_E2E_SCREENSHOTS=<folder> to save the connect form at desktop and phone width.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Locator, Page, expect

from tests.e2e.conftest import Operator, operated
from tests.e2e.test_journey import sign_up_and_log_in
from tests.fakes.bluesky import HANDLE, FakeBluesky, running_bluesky

pytestmark = pytest.mark.timeout(180)


async def shot(card: Locator, name: str) -> None:
    folder = os.environ.get("COOP_E2E_SCREENSHOTS")
    if folder:
        os.makedirs(folder, exist_ok=True)
        await card.screenshot(path=str(Path(folder) / f"{name}.png"))


@pytest.fixture
def pds() -> Iterator[FakeBluesky]:
    with running_bluesky() as fake:
        fake.add_posts(4, text="Skeet from the browser test")
        yield fake


@pytest.fixture
async def server(engine: str, tmp_path: Path, pds: FakeBluesky) -> AsyncIterator[Operator]:
    """A coop server whose Bluesky resolver and PLC directory are the fake."""
    async with operated(
        engine, tmp_path, COOP_BLUESKY_RESOLVER_URL=pds.url, COOP_BLUESKY_PLC_URL=pds.url
    ) as running:
        yield running


@pytest.fixture
async def member_page(browser: Browser, server: Operator) -> AsyncIterator[Page]:
    context = await browser.new_context(base_url=server.base_url)
    context.set_default_timeout(10_000)
    page = await context.new_page()
    await sign_up_and_log_in(page, f"bsky-{secrets.token_hex(4)}@example.org")
    try:
        yield page
    finally:
        await context.close()


async def test_a_member_signs_in_with_bluesky_and_sees_their_posts_counted(
    member_page: Page, pds: FakeBluesky
) -> None:
    page = member_page
    await page.goto("/connectors")
    card = page.locator("#connect-bluesky")
    # What Bluesky reads and never reads is on the page before the member chooses either way.
    await expect(page.locator("main")).to_contain_text("who liked, reposted, quoted or replied")
    for width, height in ((1280, 900), (390, 844)):
        await page.set_viewport_size({"width": width, "height": height})
        await card.scroll_into_view_if_needed()
        await shot(card, f"connectors-bluesky-{width}")

    await page.get_by_label("Bluesky handle").fill(HANDLE)
    await page.get_by_role("button", name="Sign in with Bluesky").click()

    await expect(page.get_by_role("status")).to_contain_text("Bluesky connected.")
    assert pds.auth.log.to("/oauth/authorize")  # the browser went to the member's server
    facts = page.locator("dl.facts")
    for _ in range(50):
        text = await facts.locator("dt:has-text('Records collected') + dd").inner_text()
        if text == "5":  # four posts and the follower count
            break
        await page.wait_for_timeout(200)
        await page.reload()
    assert text == "5"
    assert pds.log.to("/xrpc/com.atproto.server.createSession") == []


async def test_refusing_at_the_server_comes_back_to_a_clear_page(
    member_page: Page, pds: FakeBluesky
) -> None:
    pds.auth.decision = "deny"
    page = member_page
    await page.goto("/connectors")
    await page.get_by_label("Bluesky handle").fill(HANDLE)
    await page.get_by_role("button", name="Sign in with Bluesky").click()

    await expect(page.locator("main")).to_contain_text("You did not allow coop")
    await expect(page.locator("main")).to_contain_text("oauth_denied")
