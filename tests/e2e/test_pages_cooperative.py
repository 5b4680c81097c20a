"""Voting in a real browser against a real `coop serve` with governance on: the operator
opens a proposal with the CLI, a member sees the notice on Scores, goes to Cooperative,
votes, sees their own vote and the tally, and changes the vote.

Set COOP_E2E_SCREENSHOTS=<folder> to save the page at desktop and phone width.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from tests.e2e.conftest import Operator, operated
from tests.e2e.test_journey import nav, shot, sign_up_and_log_in
from tests.e2e.test_pages_upgrade import flash

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
async def cooperative(engine: str, tmp_path: Path) -> AsyncIterator[Operator]:
    async with operated(engine, tmp_path, COOP_GOVERNANCE="1") as running:
        yield running


def operator_cli(server: Operator, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "coop", *args],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def vote(page: Page, choice: str) -> None:
    form = page.get_by_role("group", name="Your vote on Reach")
    await form.get_by_label(choice, exact=True).check()
    await page.get_by_role("button", name="Vote").click()


async def test_a_member_votes_and_changes_their_vote_in_the_browser(
    browser: Browser, cooperative: Operator
) -> None:
    context = await browser.new_context(base_url=cooperative.base_url)
    context.set_default_timeout(15_000)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await sign_up_and_log_in(page, "voter@example.org")
    # The first time governance is on, the installed scorers count as approved; the operator
    # then asks the members whether to retire one.
    opened = await asyncio.to_thread(
        operator_cli, cooperative, "proposals", "open", "reach", "--retire"
    )
    assert "retire reach" in opened

    await page.goto("/")
    notice = page.get_by_role("region", name="A vote is open")
    await expect(notice).to_contain_text("retire Reach")
    await nav(page, "Cooperative")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Cooperative")
    proposal = page.get_by_role("region", name="Retire Reach open")
    await expect(proposal).to_contain_text("You have not voted.")
    await expect(proposal).to_contain_text("0 of 1 members voted")

    await vote(page, "Yes")
    await flash(page, "Your vote is recorded: Yes.")
    await expect(proposal).to_contain_text("Your vote: Yes")
    await expect(proposal).to_contain_text("Yes 1 · No 0 · Abstain 0")
    await expect(proposal.get_by_label("Yes", exact=True)).to_be_checked()
    await shot(page, "cooperative-desktop")
    await page.set_viewport_size({"width": 390, "height": 844})
    await shot(page, "cooperative-phone")

    await vote(page, "No")
    await flash(page, "Your vote is recorded: No.")
    await expect(proposal).to_contain_text("Your vote: No")
    await expect(proposal).to_contain_text("Yes 0 · No 1 · Abstain 0")
    await expect(proposal).to_contain_text("1 of 1 members voted")
    listed = await asyncio.to_thread(operator_cli, cooperative, "proposals", "list")
    assert "yes 0, no 1, abstain 0 of 1" in listed
    assert not errors
    await context.close()
