"""Apps in a browser: pause all sharing refuses every app at once and resume restores exactly
the access it had; one app can be paused alone and stays paused through a sharing pause;
revoke ends one app's access on its next request."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.async_api import BrowserContext, Page, expect

from tests.e2e import member_data
from tests.e2e.member_data import ExampleApp, Member, log_in_as

member = member_data.member
module_app = member_data.module_app
module_blog = member_data.module_blog

pytestmark = pytest.mark.timeout(120)


async def app_reads(app: ExampleApp) -> int:
    async with httpx.AsyncClient(timeout=20) as http:
        return (await http.get(app.server.url("/score"))).status_code


async def test_pause_all_sharing_refuses_every_app_until_resumed(
    page: Page, context: BrowserContext, member: Member, module_app: ExampleApp
) -> None:
    await log_in_as(context, member)
    await page.goto("/apps")
    pause = page.get_by_role("button", name="Pause all sharing")
    await expect(pause).to_have_accessible_description(
        "Sharing is on. Pausing suspends every app's access at once: no app can read anything"
        " until you resume. Nothing is deleted and no grant is revoked."
    )
    await pause.click()
    await expect(page.get_by_role("status")).to_have_text(
        "Sharing is paused. No app can read your data."
    )
    await expect(page.locator("main table tbody tr")).to_contain_text("Paused")
    assert await app_reads(module_app) == 401

    await page.get_by_role("button", name="Resume sharing").click()
    await expect(page.get_by_role("status")).to_have_text("Sharing resumed.")
    await expect(page.locator("main table tbody tr")).to_contain_text("Active")
    assert await app_reads(module_app) == 200


async def test_one_app_paused_alone_stays_paused_until_resumed(
    page: Page, context: BrowserContext, member: Member, module_app: ExampleApp
) -> None:
    await log_in_as(context, member)
    await page.goto("/apps")
    row = page.locator("main table tbody tr").filter(has_text=module_app.name)
    pause = row.get_by_role("button", name="Pause", exact=True)
    await expect(pause).to_have_accessible_description(
        re.compile(rf"^{re.escape(module_app.name)}.*Pause suspends one app's access")
    )
    await pause.click()
    await expect(page.get_by_role("status")).to_have_text(
        "Access paused. The app can read nothing until you resume it."
    )
    await expect(row).to_contain_text("Paused by you")
    assert await app_reads(module_app) == 401

    # Pausing and resuming all sharing leaves it paused.
    await page.get_by_role("button", name="Pause all sharing").click()
    await page.get_by_role("button", name="Resume sharing").click()
    await expect(page.get_by_role("status")).to_have_text("Sharing resumed.")
    await expect(row).to_contain_text("Paused by you")
    assert await app_reads(module_app) == 401

    await row.get_by_role("button", name="Resume", exact=True).click()
    await expect(page.get_by_role("status")).to_have_text("Access resumed.")
    await expect(row).to_contain_text("Active")
    assert await app_reads(module_app) == 200


async def test_revoke_says_what_happens_and_ends_the_apps_access(
    page: Page, context: BrowserContext, member: Member, module_app: ExampleApp
) -> None:
    await log_in_as(context, member)
    await page.goto("/apps")
    row = page.locator("main table tbody tr").filter(has_text=module_app.name)
    revoke = row.get_by_role("button", name="Revoke")
    await expect(revoke).to_have_accessible_description(
        re.compile(
            rf"^{re.escape(module_app.name)}.*Revoke ends that app's access at once: its tokens"
            r" stop working on its next request"
        )
    )
    await revoke.click()
    await expect(page.get_by_role("status")).to_have_text(
        "Access revoked. The app can no longer read your data."
    )
    await expect(page.locator("main")).to_contain_text("No app can read your data.")
    assert await app_reads(module_app) == 401

    # The access log still shows what the app read before.
    await page.goto("/access-log")
    await expect(page.locator("main table")).to_contain_text(module_app.name)
