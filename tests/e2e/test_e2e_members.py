"""A member's account journey in a real browser against the real server process."""

from __future__ import annotations

import secrets

from playwright.async_api import BrowserContext, Page, expect

from tests.e2e.conftest import CoopServer

PASSWORD = "correct horse battery staple"


async def _sign_up_and_log_in(page: Page) -> str:
    email = f"e2e-{secrets.token_hex(4)}@example.org"
    await page.goto("/signup")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign up").click()
    await expect(page).to_have_url(page.url.split("/login")[0] + "/login")
    await expect(page.get_by_role("status")).to_contain_text(
        "If this email was new, your account is ready. Log in to continue."
    )
    # Log in straight to the account page (this test is about accounts, not the dashboard).
    await page.goto("/login?next=/account")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Account")
    return email


async def test_member_signs_up_logs_in_and_logs_out_in_a_browser(
    page: Page, coop_server: CoopServer
) -> None:
    await _sign_up_and_log_in(page)
    nav = page.get_by_role("navigation", name="Main")
    for name in ("Scores", "Connectors", "Scorers", "Apps", "Access log", "Account"):
        await expect(nav.get_by_role("link", name=name, exact=True)).to_be_visible()
    await page.get_by_role("button", name="Log out").click()
    await expect(page.get_by_role("status")).to_contain_text("You are logged out.")
    await expect(nav.get_by_role("link", name="Log in", exact=True)).to_be_visible()


async def test_member_ends_another_session_and_changes_password_in_a_browser(
    page: Page, context: BrowserContext, coop_server: CoopServer
) -> None:
    email = await _sign_up_and_log_in(page)
    other_context = await context.browser.new_context(base_url=coop_server.base_url)  # type: ignore[union-attr]
    try:
        other = await other_context.new_page()
        await other.goto("/login?next=/account")
        await other.get_by_label("Email").fill(email)
        await other.get_by_label("Password").fill(PASSWORD)
        await other.get_by_role("button", name="Log in").click()
        await expect(other.get_by_role("heading", level=1)).to_have_text("Account")

        await page.goto("/account")
        await expect(page.get_by_text("This device")).to_be_visible()
        await page.get_by_role("button", name="End session").click()
        await expect(page.get_by_role("status")).to_contain_text("The session was ended.")
        await other.goto("/account")
        await expect(other.get_by_role("heading", level=1)).to_have_text("Log in")

        await page.get_by_role("link", name="Change password").click()
        await page.get_by_label("Current password").fill(PASSWORD)
        await page.get_by_label("New password").fill("an even better passphrase")
        await page.get_by_role("button", name="Change password").click()
        await expect(page.get_by_role("status")).to_contain_text("Your password was changed.")
    finally:
        await other_context.close()
