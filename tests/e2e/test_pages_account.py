"""Account in a browser: a wrong current password says what to do, a password change logs the
other browsers out, and ending a session says what it does and logs that browser out."""

from __future__ import annotations

import secrets

import pytest
from playwright.async_api import BrowserContext, Page, expect

from tests.e2e.conftest import CoopServer
from tests.e2e.test_journey import PASSWORD, sign_up_and_log_in

pytestmark = pytest.mark.timeout(120)

NEW_PASSWORD = "an even longer passphrase for coop"


async def log_in(page: Page, email: str, password: str) -> None:
    await page.goto("/login?next=/account")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Log in").click()


async def test_password_change_and_ending_sessions(
    page: Page, context: BrowserContext, coop_server: CoopServer
) -> None:
    email = f"account-{secrets.token_hex(4)}@example.org"
    await sign_up_and_log_in(page, email)
    other_context = await context.browser.new_context(base_url=coop_server.base_url)  # type: ignore[union-attr]
    try:
        other = await other_context.new_page()
        await log_in(other, email, PASSWORD)
        await expect(other.get_by_role("heading", level=1)).to_have_text("Account")

        # Ending the other session: the button says what it does, then a flash confirms it.
        await page.goto("/account")
        end = page.get_by_role("button", name="End session")
        await expect(end).to_have_count(1)  # never offered for this browser's own session
        description = await end.evaluate(
            "b => b.getAttribute('aria-describedby').split(' ')"
            ".map(id => document.getElementById(id).innerText).join(' ')"
        )
        assert "that browser is logged out on its next request" in description
        await end.click()
        await expect(page.get_by_role("status")).to_have_text("The session was ended.")
        await other.goto("/account")
        await expect(other.get_by_role("heading", level=1)).to_have_text("Log in")

        # A wrong current password is refused with what to do next; nothing changes.
        await log_in(other, email, PASSWORD)
        await page.goto("/account/password")
        await page.get_by_label("Current password").fill("not my password at all")
        await page.get_by_label("New password").fill(NEW_PASSWORD)
        await page.get_by_role("button", name="Change password").click()
        alert = page.get_by_role("alert")
        await expect(alert).to_contain_text("The password is incorrect.")
        await expect(alert).to_contain_text("Type the password you log in with, then try again.")
        await expect(alert).to_contain_text("invalid_password")

        await page.get_by_label("Current password").fill(PASSWORD)
        await page.get_by_label("New password").fill(NEW_PASSWORD)
        await page.get_by_role("button", name="Change password").click()
        await expect(page.get_by_role("status")).to_have_text(
            "Your password was changed. 1 other session ended."
        )
        await other.goto("/account")
        await expect(other.get_by_role("heading", level=1)).to_have_text("Log in")
        await log_in(other, email, PASSWORD)
        await expect(other.get_by_role("alert")).to_contain_text("Email or password is incorrect.")
        await log_in(other, email, NEW_PASSWORD)
        await expect(other.get_by_role("heading", level=1)).to_have_text("Account")

        # Logging out every other browser at once.
        await page.goto("/account")
        await page.get_by_role("button", name="Log out other sessions").click()
        await expect(page.get_by_role("status")).to_have_text("1 other session ended.")
        await other.goto("/account")
        await expect(other.get_by_role("heading", level=1)).to_have_text("Log in")
    finally:
        await other_context.close()
