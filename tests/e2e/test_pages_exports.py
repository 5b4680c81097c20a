"""A Facebook export in a browser: the member reads what it reads and never reads, uploads the
ZIP, sees its posts on the connection page and counted by cadence, week by week, as Facebook."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from coop.types import utcnow
from tests.connectors.exports import facebook_export
from tests.e2e.test_journey import nav, shot, sign_up_and_log_in

pytestmark = pytest.mark.timeout(120)


def recent_posts(n: int) -> list[dict[str, object]]:
    """Posts of the last n weeks, one a week, with Meta's escaping applied by the builder."""
    now = utcnow()
    return [
        {
            "timestamp": int((now - timedelta(days=7 * week + 1)).timestamp()),
            "data": [{"post": f"Semaine {week}: un café ☕"}],
            "title": "Alice Member updated her status.",
        }
        for week in range(n)
    ]


async def test_uploading_a_facebook_export_counts_its_posts(page: Page, tmp_path: Path) -> None:
    await sign_up_and_log_in(page, f"fb-{secrets.token_hex(4)}@example.org")
    await nav(page, "Scorers")
    cadence = page.locator("#scorer-cadence")
    await cadence.get_by_role("button", name="Enable").click()
    await expect(cadence.get_by_role("button", name="Disable")).to_be_visible()

    await nav(page, "Connectors")
    card = page.locator("#connect-facebook")
    await expect(card.get_by_role("heading", name="What it never reads")).to_be_visible()
    await expect(card).to_contain_text("messages, friends, followers and following lists")
    await shot(page, "connectors-facebook")
    archive = tmp_path / "facebook-export.zip"
    archive.write_bytes(facebook_export("2024", posts=recent_posts(6)))
    await card.get_by_label("Facebook export (ZIP)").set_input_files(archive)
    await card.get_by_role("button", name="Connect").click()

    await expect(page).to_have_url(re.compile(r"/connections/[0-9a-f-]+$"))
    await expect(page.get_by_role("status")).to_have_text("Your archive was read.")
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "Facebook (your downloaded information)"
    )
    facts = page.locator("dl.facts")
    await expect(facts.locator("dt:has-text('Records collected') + dd")).to_have_text("7")
    await expect(page.locator("main")).to_contain_text("Semaine 0: un café ☕")

    await page.goto("/scores/cadence")
    main = page.locator("main")
    for _ in range(50):
        if "(Facebook 1)" in await main.inner_text():
            break
        await page.wait_for_timeout(200)
        await page.reload()
    await expect(main).to_contain_text("1 published (Facebook 1)")
    await shot(page, "score-cadence-facebook")
