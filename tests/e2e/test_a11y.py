"""Automated accessibility checks (axe-core in real Chromium) on every main page of the member UI.

axe-core is the one bundled by the `axe-playwright-python` package (no network). A page fails on
any serious or critical violation of a WCAG 2.0/2.1 A or AA rule, and on the structural
best-practice rules that keep pages navigable (landmarks, one h1, heading order), whatever
their impact. Each page must also be in English, name itself in its <title> and have one h1.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import BrowserContext, Page

from tests.e2e import member_data
from tests.e2e.conftest import CoopServer
from tests.e2e.member_data import Member, log_in_as

member = member_data.member
module_app = member_data.module_app
module_blog = member_data.module_blog

pytestmark = pytest.mark.timeout(180)

AXE = Axe()
AXE_OPTIONS = {
    "runOnly": {
        "type": "tag",
        "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"],
    },
    "resultTypes": ["violations"],
}
STRUCTURAL_RULES = {
    "landmark-one-main",
    "landmark-unique",
    "landmark-no-duplicate-banner",
    "landmark-no-duplicate-contentinfo",
    "page-has-heading-one",
    "heading-order",
    "region",
    "empty-heading",
    "skip-link",
}

# (path, what its <title> must name): the logged-in pages, with the member's own data.
MEMBER_PAGES = [
    ("/", "Scores"),
    ("/scores/reach", "Reach"),
    ("/connectors", "Connectors"),
    ("{connection}", "Blog feed"),
    ("{connection}/disconnect", "Disconnect"),
    ("/scorers", "Scorers"),
    ("/apps", "Apps"),
    ("/developer", "Developer"),
    ("/access-log", "Access log"),
    ("/cooperative", "Cooperative"),
    ("/account", "Account"),
    ("/account/password", "password"),
    ("/account/export", "Export"),
    ("/account/delete", "Delete my account"),
    ("/no-such-page", "nothing here"),
]


def blocking(violations: list[dict[str, Any]]) -> list[str]:
    found = []
    for v in violations:
        if v["impact"] in ("serious", "critical") or v["id"] in STRUCTURAL_RULES:
            targets = [" ".join(map(str, n["target"])) for n in v["nodes"][:5]]
            found.append(f"{v['id']} ({v['impact']}): {v['help']} at {targets}")
    return found


async def check_page(page: Page, title_names: str) -> list[str]:
    """Every problem on the current page, as readable lines (empty when it passes)."""
    problems = []
    title = await page.title()
    if not re.search(re.escape(title_names), title, re.I):
        problems.append(f"title {title!r} does not name the page ({title_names!r})")
    if await page.locator("html").get_attribute("lang") != "en":
        problems.append('<html> lacks lang="en"')
    if (h1s := await page.locator("h1").count()) != 1:
        problems.append(f"{h1s} h1 elements")
    results = await AXE.run(page, options=AXE_OPTIONS)
    problems += blocking(results.response["violations"])
    return [f"{page.url}: {p}" for p in problems]


async def test_logged_out_pages_pass_axe(page: Page, coop_server: CoopServer) -> None:
    problems = []
    for path, names in (("/signup", "Sign up"), ("/login", "Log in"), ("/nope", "nothing here")):
        await page.goto(path)
        problems += await check_page(page, names)
    # A form error is announced and still accessible.
    await page.goto("/login")
    await page.get_by_label("Email").fill("nobody@example.org")
    await page.get_by_label("Password").fill("wrong password, surely")
    await page.get_by_role("button", name="Log in").click()
    problems += await check_page(page, "Log in")
    assert not problems, "\n".join(problems)


async def test_every_member_page_passes_axe(
    page: Page, context: BrowserContext, member: Member
) -> None:
    await log_in_as(context, member)
    problems = []
    for path, names in MEMBER_PAGES:
        await page.goto(path.format(connection=member.connection_path))
        problems += await check_page(page, names)
    # The consent page an app sends the member to, and an action's flash message.
    await page.goto(member.app_server.url("/login"))
    problems += await check_page(page, "Allow")
    await page.goto("/scorers")
    await page.locator("#scorer-cadence").get_by_role("button", name="Disable").click()
    problems += await check_page(page, "Scorers")
    await page.locator("#scorer-cadence").get_by_role("button", name="Enable").click()
    assert not problems, "\n".join(problems)
