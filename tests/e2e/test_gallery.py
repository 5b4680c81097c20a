"""Every member page at desktop (1280) and phone (390) width, as its user sees it: no script
error and no refused resource (CSP) in the browser's console on any of them.

Set COOP_E2E_GALLERY=<folder> to also save each page as <name>-<width>.png, for looking at a
change before it lands (CONTRIBUTING.md asks for it).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.async_api import Browser, ConsoleMessage

from tests.e2e import member_data
from tests.e2e.conftest import CoopServer
from tests.e2e.member_data import Member
from tests.e2e.test_a11y import MEMBER_PAGES

member = member_data.member
module_app = member_data.module_app
module_blog = member_data.module_blog

pytestmark = pytest.mark.timeout(180)

WIDTHS = (1280, 390)


def shot_name(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "scores"


async def test_every_page_at_both_widths_runs_without_console_errors(
    browser: Browser, coop_server: CoopServer, member: Member
) -> None:
    folder = os.environ.get("COOP_E2E_GALLERY")
    errors: list[str] = []
    where = {"page": ""}

    def console(message: ConsoleMessage) -> None:
        # A missing page is meant to answer 404; anything else is a real error.
        if message.type == "error" and "404" not in message.text:
            errors.append(f"{where['page']}: {message.text}")

    for width in WIDTHS:
        context = await browser.new_context(
            base_url=coop_server.base_url, viewport={"width": width, "height": 900}
        )
        try:
            page = await context.new_page()
            page.on("console", console)
            page.on("pageerror", lambda exc: errors.append(f"{where['page']}: {exc}"))
            await context.add_cookies(member.cookies)
            for path, _ in MEMBER_PAGES:
                where["page"] = f"{path} at {width}px"
                await page.goto(path.format(connection=member.connection_path))
                if folder:
                    os.makedirs(folder, exist_ok=True)
                    target = Path(folder) / f"{shot_name(path.format(connection='connection'))}"
                    await page.screenshot(path=f"{target}-{width}.png", full_page=True)
            where["page"] = f"the consent page at {width}px"
            await page.goto(member.app_server.url("/login"))
            if folder:
                await page.screenshot(
                    path=str(Path(folder) / f"consent-{width}.png"), full_page=True
                )
        finally:
            await context.close()
    assert errors == []
