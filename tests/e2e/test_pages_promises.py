"""What an app promises, in a browser (issue 20): the consent page shows the purpose next to
each scope, the retention and the policy link; a change of terms makes the Apps page say why
the app is held, and Agree lets it read again. COOP_E2E_SCREENSHOTS=<folder> saves the pages
at desktop (1280) and phone (390) width."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from tests.e2e.conftest import CoopServer
from tests.e2e.member_data import ExampleApp
from tests.e2e.test_journey import running_example_app, sign_up_and_log_in

pytestmark = pytest.mark.timeout(120)

PURPOSE = "To rank your posts among your followers'."
REACH_WHY = "To place you on the weekly leaderboard."
WIDTHS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(scope="module")
def promising_app(coop_server: CoopServer) -> Iterator[ExampleApp]:
    name = f"Ranker {secrets.token_hex(3)}"
    extra = (
        "--purpose", PURPOSE,
        "--score-purpose", f"reach: {REACH_WHY}",
        "--retention-days", "30",
        "--policy-uri", "https://ranker.example/privacy",
    )  # fmt: skip
    with running_example_app(coop_server, name=name, scope="profile score:reach", extra=extra) as (
        server,
        client,
    ):
        yield ExampleApp(server, client, name)


async def shots(page: Page, name: str) -> None:
    """Save the page at both widths (when asked to), ending at desktop width."""
    folder = os.environ.get("COOP_E2E_SCREENSHOTS")
    if not folder:
        return
    os.makedirs(folder, exist_ok=True)
    for width, size in WIDTHS.items():
        await page.set_viewport_size(size)
        await page.screenshot(path=str(Path(folder) / f"{name}-{width}.png"), full_page=True)
    await page.set_viewport_size(WIDTHS["desktop"])


async def test_consent_shows_promises_and_a_change_waits_for_the_member(
    browser: Browser, coop_server: CoopServer, promising_app: ExampleApp
) -> None:
    context = await browser.new_context(base_url=coop_server.base_url, viewport=WIDTHS["desktop"])
    context.set_default_timeout(10_000)
    try:
        page = await context.new_page()
        await sign_up_and_log_in(page, f"promises-{secrets.token_hex(4)}@example.org")
        await page.goto(promising_app.server.url("/login"))
        # A score is a group of level choices (issue 14); its purpose describes the group.
        reach = page.get_by_role("group", name=re.compile("Your Reach score"))
        # ...and so does what its scorer reads (the consent page says it since issue 16).
        await expect(reach).to_have_accessible_description(
            f"Why: {REACH_WHY} What this scorer reads: posts you published, with their reaction"
            " counts; your public repositories, with star and fork counts"
        )
        profile = page.get_by_role("checkbox", name=re.compile("your handle"))
        await expect(profile).to_have_accessible_description(f"Why: {PURPOSE}")
        main = page.locator("main")
        await expect(main).to_contain_text("keeps what it reads for at most 30 days")
        link = page.get_by_role("link", name="https://ranker.example/privacy")
        await expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")
        await shots(page, "promises-consent")
        await page.get_by_role("button", name="Allow").click()
        await expect(page).to_have_url(re.compile(re.escape(promising_app.server.url("/callback"))))

        coop_server.coop(
            "app", "set-terms", "--client-id", promising_app.client["client_id"],
            "--purpose", "To train advertising models.",
        )  # fmt: skip
        await page.goto("/apps")
        row = page.get_by_role("row", name=re.compile(re.escape(promising_app.name)))
        await expect(row).to_contain_text("Waiting for you:")
        await shots(page, "promises-apps-waiting")
        await row.get_by_role("link", name="Review the new terms").click()
        await expect(page.get_by_role("heading", level=1)).to_have_text(
            f"{promising_app.name} changed its terms"
        )
        await expect(main).to_contain_text("To train advertising models.")
        await expect(main).to_contain_text(PURPOSE)
        await shots(page, "promises-review")
        await page.get_by_role("button", name="Agree").click()
        await expect(page.locator(".flashes")).to_contain_text(
            "You agreed to the new terms. The app can read again."
        )
        await expect(row).to_contain_text("Active")
        await shots(page, "promises-apps-agreed")

        await row.get_by_role("link", name="History").click()
        await expect(main).to_contain_text("Agreed")
        async with page.expect_download() as download_info:
            await page.get_by_role("link", name="Download the consent receipt").click()
        download = await download_info.value
        assert download.suggested_filename.startswith("coop-consent-receipt-")
        await shots(page, "promises-history")
        await page.goto("/developer")
        form = page.locator("form[action='/developer/apps']")
        await form.get_by_label("App name").fill("My chart")
        await form.get_by_label("Redirect URIs (one per line)").fill("https://chart.example/cb")
        await form.get_by_label("Why the app wants members' data (optional)").fill("To chart it.")
        await form.get_by_label("Days the app keeps what it reads (optional)").fill("0")
        await form.get_by_role("button", name="Register app").click()
        await expect(page.locator("main")).to_contain_text("App registered")
        await page.goto("/developer")
        await page.get_by_text("What My chart promises (version 1)").click()
        await expect(page.locator("details.terms-edit textarea[name=purpose]")).to_have_value(
            "To chart it."
        )
        await shots(page, "promises-developer")
    finally:
        await context.close()
