"""A signed-up member with some data, shared by the page-level browser tests of one module.

Signing up, connecting a feed, enabling scorers and granting an app takes a few seconds; the
accessibility and responsive checks only look at pages, so one member per module is enough.
Tests load the member's session into their own context with `log_in_as`.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.e2e.conftest import CoopServer
from tests.e2e.test_journey import nav, running_example_app, seeded_blog, sign_up_and_log_in
from tests.fakes.blog import Blog
from tests.fakes.server import LiveServer


@dataclass
class Member:
    email: str
    cookies: list[Any]
    connection_path: str
    app_server: LiveServer


@dataclass
class ExampleApp:
    server: LiveServer
    client: dict[str, Any]
    name: str


async def log_in_as(context: BrowserContext, member: Member) -> None:
    await context.add_cookies(member.cookies)


@pytest.fixture(scope="module")
def module_blog() -> Iterator[tuple[LiveServer, Blog]]:
    with seeded_blog() as served:
        yield served


@pytest.fixture(scope="module")
def module_app(coop_server: CoopServer) -> Iterator[ExampleApp]:
    """The example third-party app (docs/examples), registered by the operator."""
    name = f"Example {secrets.token_hex(3)}"
    with running_example_app(coop_server, name=name, scope="profile score:reach") as (
        server,
        client,
    ):
        yield ExampleApp(server, client, name)


async def connect_feed(page: Page, feed_url: str) -> str:
    """Connect a blog feed on the Connectors page; returns the connection's path."""
    await page.goto("/connectors")
    await page.get_by_label("Feed URL").fill(feed_url)
    await page.locator("#connect-feed").get_by_role("button", name="Connect").click()
    await expect(page).to_have_url(re.compile(r"/connections/[0-9a-f-]+$"))
    path = "/" + page.url.split("/", 3)[3]
    for _ in range(50):
        if "OK" in await page.locator("main").inner_text():
            break
        await page.wait_for_timeout(200)
        await page.reload()
    return path


async def allow_app(page: Page, app: ExampleApp) -> None:
    await page.goto(app.server.url("/login"))
    await page.get_by_role("button", name="Allow").click()
    await expect(page).to_have_url(re.compile(re.escape(app.server.url("/callback"))))


@pytest.fixture(scope="module")
async def member(
    browser: Browser,
    coop_server: CoopServer,
    module_blog: tuple[LiveServer, Blog],
    module_app: ExampleApp,
) -> AsyncIterator[Member]:
    """A member with a synced feed, both reference scorers on, one app granted and one read."""
    context = await browser.new_context(base_url=coop_server.base_url)
    context.set_default_timeout(10_000)
    try:
        page = await context.new_page()
        email = f"pages-{secrets.token_hex(4)}@example.org"
        await sign_up_and_log_in(page, email)
        connection_path = await connect_feed(page, module_blog[0].url("/rss.xml"))
        await nav(page, "Scorers")
        for name in ("reach", "cadence"):
            await page.locator(f"#scorer-{name}").get_by_role("button", name="Enable").click()
            await expect(
                page.locator(f"#scorer-{name}").get_by_role("button", name="Disable")
            ).to_be_visible()
        await nav(page, "Scores")
        for _ in range(50):
            if "No scores" not in await page.locator("main").inner_text():
                break
            await page.wait_for_timeout(200)
            await page.reload()
        await allow_app(page, module_app)
        async with httpx.AsyncClient(timeout=20) as http:
            assert (await http.get(module_app.server.url("/score"))).status_code == 200
        cookies = await context.cookies()
        yield Member(email, list(cookies), connection_path, module_app.server)
    finally:
        await context.close()
