"""The access log in a browser: every read listed newest first, 50 to a page with Older/Newer
links, and a filter by app (a personal access token's reads are the member's own: "you")."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.async_api import BrowserContext, Page, expect

from tests.e2e import member_data
from tests.e2e.conftest import CoopServer
from tests.e2e.member_data import ExampleApp, Member, log_in_as

member = member_data.member
module_app = member_data.module_app
module_blog = member_data.module_blog

pytestmark = pytest.mark.timeout(120)

QUERY = '{ viewer { score(scorer: "reach") { value } } }'


async def create_token(page: Page) -> str:
    await page.goto("/developer")
    await page.get_by_label("Token name").fill("my script")
    await page.get_by_label(re.compile(r"\(score:reach\)")).check()
    await page.get_by_role("button", name="Create token").click()
    created = page.get_by_role("status").filter(has_text="Token created: my script")
    await expect(created).to_contain_text("It is shown only once")
    return await created.locator("code").inner_text()


async def test_access_log_paginates_and_filters_by_app(
    page: Page,
    context: BrowserContext,
    coop_server: CoopServer,
    member: Member,
    module_app: ExampleApp,
) -> None:
    await log_in_as(context, member)
    token = await create_token(page)
    async with httpx.AsyncClient(timeout=20) as http:
        for _ in range(52):
            answer = await http.post(
                coop_server.url("/graphql"),
                json={"query": QUERY},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert answer.status_code == 200, answer.text
        for _ in range(2):
            assert (await http.get(module_app.server.url("/score"))).status_code == 200

    rows = page.locator("main table tbody tr")
    pages = page.get_by_role("navigation", name="Pages")
    await page.goto("/access-log")
    await expect(rows).to_have_count(50)
    await expect(rows.first).to_contain_text(module_app.name)  # newest first
    await expect(pages).to_contain_text("Page 1")
    await expect(pages.get_by_role("link", name="Newer")).to_have_count(0)
    await pages.get_by_role("link", name="Older").click()
    await expect(pages).to_contain_text("Page 2")
    await expect(rows).to_have_count(5)  # 52 + 2 + the read when the member signed up = 55
    await expect(pages.get_by_role("link", name="Older")).to_have_count(0)
    await pages.get_by_role("link", name="Newer").click()
    await expect(pages).to_contain_text("Page 1")

    await page.get_by_label("App").select_option(label=module_app.name)
    await page.get_by_role("button", name="Filter").click()
    await expect(rows).to_have_count(3)
    for text in await rows.all_inner_texts():
        assert module_app.name in text and "score:reach" in text
    await expect(page.get_by_label("App")).to_have_value(re.compile(r"[0-9a-f-]{36}"))
    await page.get_by_label("App").select_option(label="All apps")
    await page.get_by_role("button", name="Filter").click()
    await expect(rows).to_have_count(50)
