"""The real server process: starts from the CLI, serves pages with the security headers."""

from __future__ import annotations

from playwright.async_api import Page

from tests.e2e.conftest import CoopServer


async def test_served_start_page_carries_security_headers(
    page: Page, coop_server: CoopServer
) -> None:
    response = await page.goto("/")
    assert response is not None and response.status == 200
    headers = response.headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert await page.title()
    assert await page.locator("html").get_attribute("lang") == "en"
