"""The consent page in a browser: it says who asks for what, and Deny sends the member back to
the app with `error=access_denied` (RFC 6749 §4.1.2.1) and grants nothing."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import BrowserContext, Page, expect

from tests.e2e import member_data
from tests.e2e.member_data import ExampleApp, Member, log_in_as
from tests.e2e.test_pages_promises import shots

member = member_data.member
module_app = member_data.module_app
module_blog = member_data.module_blog

pytestmark = pytest.mark.timeout(120)


async def test_deny_returns_access_denied_to_the_app_and_grants_nothing(
    page: Page, context: BrowserContext, member: Member, module_app: ExampleApp
) -> None:
    await log_in_as(context, member)
    await page.goto("/apps")
    await page.get_by_role("button", name="Revoke").click()
    await expect(page.locator("main")).to_contain_text("No app can read your data.")

    await page.goto(module_app.server.url("/login"))
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        f"Allow {module_app.name} to read your data?"
    )
    await expect(page).to_have_title(re.compile(re.escape(f"Allow {module_app.name}?")))
    scopes = page.get_by_role("group", name=re.compile(r"may read"))
    await expect(scopes.get_by_role("checkbox")).to_have_count(1)  # profile
    reach = scopes.get_by_role("group", name=re.compile(r"Your Reach score"))
    await expect(reach.get_by_role("radio")).to_have_count(3)  # exact, band, nothing
    await expect(reach.get_by_role("radio", name="the exact value and why")).to_be_checked()

    callback = re.compile(
        re.escape(module_app.server.url("/callback")) + r"\?.*error=access_denied"
    )
    async with page.expect_request(callback):
        await page.get_by_role("button", name="Deny").click()
    await expect(page.locator("body")).to_contain_text("access_denied")

    await page.goto("/apps")
    await expect(page.locator("main")).to_contain_text("No app can read your data.")


async def test_the_member_lowers_exact_to_a_band_and_the_app_gets_only_the_band(
    page: Page, context: BrowserContext, member: Member, module_app: ExampleApp
) -> None:
    await log_in_as(context, member)
    await page.goto(module_app.server.url("/login"))
    reach = page.get_by_role("group", name=re.compile(r"Your Reach score"))
    band = reach.get_by_role("radio", name=re.compile(r"a range such as \d+\u2013\d+"))
    await band.check()
    await expect(reach.get_by_role("radio", name="the exact value and why")).not_to_be_checked()
    await expect(reach).to_contain_text(
        "What this scorer reads: posts you published, with their reaction counts"
    )
    await shots(page, "consent-levels")
    callback = re.compile(re.escape(module_app.server.url("/callback")) + r"\?.*code=")
    async with page.expect_request(callback):
        await page.get_by_role("button", name="Allow").click()
    await expect(page.locator("body")).to_contain_text("score:reach:band")
    await expect(page.locator("body")).not_to_contain_text('score:reach"')

    await page.goto("/apps")
    row = page.get_by_role("row").filter(has_text=module_app.name)
    await expect(row).to_contain_text("a range such as")
    await expect(row).not_to_contain_text("the exact value")
    await shots(page, "apps-levels")
