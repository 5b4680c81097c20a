"""Every main page fits a phone (375 by 740 CSS pixels): no sideways scrolling of the page itself.

Wide tables scroll inside their own labelled, focusable region instead. Set
COOP_E2E_SCREENSHOTS=<folder> to save the dashboard at phone width (scores-phone.png).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page

from tests.e2e import member_data
from tests.e2e.conftest import CoopServer
from tests.e2e.member_data import Member
from tests.e2e.test_a11y import MEMBER_PAGES

member = member_data.member
module_app = member_data.module_app
module_blog = member_data.module_blog

pytestmark = pytest.mark.timeout(120)

PHONE = {"width": 375, "height": 740}


async def overflow(page: Page) -> str | None:
    """What sticks out sideways on the current page, or None when it fits."""
    width = await page.evaluate("document.scrollingElement.scrollWidth")
    if width <= PHONE["width"]:
        return None
    culprits = await page.evaluate(
        """(limit) => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > limit
                         && !e.parentElement.closest('.table-wrap'))
            .slice(0, 5)
            .map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : ''))""",
        PHONE["width"],
    )
    return f"{page.url}: {width}px wide, sticking out: {culprits}"


async def test_every_page_fits_a_phone_without_sideways_scrolling(
    browser: Browser, coop_server: CoopServer, member: Member
) -> None:
    context = await browser.new_context(
        base_url=coop_server.base_url, viewport=PHONE, device_scale_factor=2, is_mobile=True
    )
    try:
        page = await context.new_page()
        problems = []
        for path in ("/signup", "/login"):
            await page.goto(path)
            problems.append(await overflow(page))
        await context.add_cookies(member.cookies)
        for path, _ in MEMBER_PAGES:
            await page.goto(path.format(connection=member.connection_path))
            problems.append(await overflow(page))
        await page.goto(member.app_server.url("/login"))
        problems.append(await overflow(page))
        await page.goto("/")
        folder = os.environ.get("COOP_E2E_SCREENSHOTS")
        if folder:
            os.makedirs(folder, exist_ok=True)
            await page.screenshot(path=str(Path(folder) / "scores-phone.png"), full_page=True)
        found = [p for p in problems if p]
        assert not found, "\n".join(found)
    finally:
        await context.close()
