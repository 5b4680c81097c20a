"""Keyboard-only use: sign up, log in and reach every page of the main navigation with Tab and
Enter alone, and see where the focus is at every step (an outline or a box shadow)."""

from __future__ import annotations

import re
import secrets

import pytest
from playwright.async_api import Page, expect

from tests.e2e.conftest import CoopServer
from tests.e2e.test_journey import PASSWORD

pytestmark = pytest.mark.timeout(120)

# What the focused element is: its tag, accessible text and whether its focus is visible.
FOCUSED = """() => {
  const e = document.activeElement;
  if (!e || e === document.body) return null;
  const style = getComputedStyle(e);
  const outline = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0;
  const shadow = style.boxShadow && style.boxShadow !== 'none';
  const label = e.labels && e.labels.length ? e.labels[0].innerText : '';
  return {
    tag: e.tagName.toLowerCase(),
    text: (label || e.innerText || e.value || '').trim(),
    visible: Boolean((outline || shadow) && e.matches(':focus-visible')),
  };
}"""


async def tab_to(page: Page, tag: str, text: str, *, limit: int = 60) -> None:
    """Press Tab until the element `tag` named `text` has the focus; every element on the way
    must show its focus."""
    for _ in range(limit):
        await page.keyboard.press("Tab")
        focused = await page.evaluate(FOCUSED)
        if focused is None:
            continue
        assert focused["visible"], f"no visible focus on {focused} at {page.url}"
        if focused["tag"] == tag and focused["text"] == text:
            return
    raise AssertionError(f"Tab never reached <{tag}> {text!r} on {page.url}")


async def fill_by_keyboard(page: Page, label: str, value: str) -> None:
    await tab_to(page, "input", label)
    await page.keyboard.type(value)


async def test_member_signs_up_logs_in_and_visits_every_page_by_keyboard(
    page: Page, coop_server: CoopServer
) -> None:
    email = f"keys-{secrets.token_hex(4)}@example.org"
    await page.goto("/")
    await expect(page).to_have_url(re.compile(r"/login"))
    await tab_to(page, "a", "Sign up")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Sign up")
    await fill_by_keyboard(page, "Email", email)
    await fill_by_keyboard(page, "Password", PASSWORD)
    await tab_to(page, "button", "Sign up")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("status")).to_contain_text("Log in to continue")

    # The login form already holds the email just signed up with, and the focus waits in
    # the password field.
    await expect(page.get_by_label("Email")).to_have_value(email)
    await expect(page.get_by_label("Password")).to_be_focused()
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")  # submits the form from its last field
    await expect(page.get_by_role("heading", level=1)).to_have_text("Scores")

    # The skip link comes first and moves the focus into the page's content.
    await tab_to(page, "a", "Skip to content", limit=1)
    await page.keyboard.press("Enter")
    await expect(page.locator("main")).to_be_focused()

    for link, heading in (
        ("Connectors", "Connectors"),
        ("Scorers", "Scorers"),
        ("Apps", "Apps"),
        ("Access log", "Access log"),
        ("Cooperative", "Cooperative"),
        ("Account", "Account"),
        ("Scores", "Scores"),
    ):
        await tab_to(page, "a", link)
        await page.keyboard.press("Enter")
        await expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        await expect(
            page.get_by_role("navigation", name="Main").get_by_role("link", name=link, exact=True)
        ).to_have_attribute("aria-current", "page")

    await tab_to(page, "button", "Log out")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("status")).to_contain_text("You are logged out.")
