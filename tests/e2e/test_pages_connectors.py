"""Connectors in a browser: connect a blog feed, sync now, and a disconnect that first lists
what goes (the records counted on the confirmation page are the ones deleted)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from playwright.async_api import BrowserContext, Page, expect

from tests.e2e import member_data
from tests.e2e.member_data import Member, log_in_as
from tests.e2e.test_journey import CANARY
from tests.fakes.blog import Blog
from tests.fakes.server import LiveServer

member = member_data.member
module_app = member_data.module_app
module_blog = member_data.module_blog

pytestmark = pytest.mark.timeout(120)


async def records(page: Page) -> str:
    facts = page.locator("dl.facts")
    return await facts.locator("dt:has-text('Records collected') + dd").inner_text()


async def test_connected_feed_shows_its_health_and_syncs_now(
    page: Page, context: BrowserContext, member: Member, module_blog: tuple[LiveServer, Blog]
) -> None:
    await log_in_as(context, member)
    await page.goto("/connectors")
    row = page.locator("main table tbody tr").filter(has_text="rss.xml")
    await expect(row).to_contain_text("OK")
    await row.get_by_role("link", name="Blog feed (RSS or Atom)").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Blog feed (RSS or Atom)")
    assert await records(page) == "6"

    module_blog[1].add_post(f"{CANARY} today", body="<p>new</p>", published=datetime.now(UTC))
    await page.get_by_role("button", name="Sync now").click()
    await expect(page.get_by_role("status")).to_have_text("Sync started.")
    for _ in range(50):
        if await records(page) == "7":
            break
        await page.wait_for_timeout(200)
        await page.reload()
    assert await records(page) == "7"
    await expect(page.get_by_role("region", name="Sync history table")).to_contain_text("ok")


async def test_a_bad_feed_url_says_what_is_wrong_and_keeps_the_form(
    page: Page, context: BrowserContext, member: Member
) -> None:
    await log_in_as(context, member)
    await page.goto("/connectors")
    bad = "ftp://127.0.0.1/feed.xml"
    await page.get_by_label("Feed URL").fill(bad)
    await page.locator("#connect-feed").get_by_role("button", name="Connect").click()
    await expect(page.get_by_role("alert")).to_contain_text(
        "Only http and https addresses can be fetched. (url_not_allowed)"
    )
    await expect(page.get_by_label("Feed URL")).to_have_value(bad)


async def test_disconnect_lists_what_goes_then_deletes_it(
    page: Page, context: BrowserContext, member: Member
) -> None:
    await log_in_as(context, member)
    await page.goto(member.connection_path)
    await page.get_by_role("link", name="Disconnect").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "Disconnect Blog feed (RSS or Atom)?"
    )
    main = page.locator("main")
    await expect(main).to_contain_text("permanently deletes the 7 records collected from it")
    # Changing one's mind is one link away and deletes nothing.
    await page.get_by_role("link", name="Keep it connected").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Blog feed (RSS or Atom)")

    await page.get_by_role("link", name="Disconnect").click()
    await page.get_by_role("button", name="Disconnect").click()
    await expect(page.get_by_role("status")).to_have_text(
        "Disconnected. 7 records from this source were deleted."
    )
    await expect(main).to_contain_text("You have not connected anything yet.")
    response = await page.goto(member.connection_path)
    assert response is not None and response.status == 404
