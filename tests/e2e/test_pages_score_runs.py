"""Recompute feedback and the reasons for no score, in a real browser against a real
`coop serve` with test scorers pip-installed into COOP_PLUGIN_PATH (issue 16):

- `sleepy` takes a few seconds: Enable and Recompute answer at once, the page says the score
  is being computed, then shows the result by itself (coop.js), or on "Check again" without
  JavaScript;
- `broken` raises: its page says in plain words that it could not compute the score.

Set COOP_E2E_SCREENSHOTS=<folder> to save the pages at desktop and phone width.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.e2e.conftest import Operator, operated
from tests.e2e.test_journey import shot, sign_up_and_log_in
from tests.scoring.test_upgrade import pip_install

pytestmark = pytest.mark.timeout(300)

SCORERS = """
import time

from coop.scoring.spec import API_VERSION, ScoreResult


class SleepyScorer:
    api_version = API_VERSION
    name = "sleepy"
    version = "1.0.0"
    title = "Sleepy"
    description = "Counts your posts, slowly (a test scorer)."
    reads = ("post",)
    fields = {"post": ("occurred_at",)}
    range = (0.0, 1000.0)
    needs_text = False
    homepage = ""

    def score(self, records, now):
        time.sleep(3)
        return ScoreResult(value=float(len(records)), reasons=[f"{len(records)} posts"])


class BrokenScorer(SleepyScorer):
    name = "broken"
    title = "Broken"
    description = "Always fails (a test scorer)."

    def score(self, records, now):
        raise KeyError("favourites")
"""
PYPROJECT = """
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "coop-score-moody"
version = "1.0.0"
requires-python = ">=3.11"

[project.entry-points."coop.scorers"]
sleepy = "coop_score_moody:SleepyScorer"
broken = "coop_score_moody:BrokenScorer"

[tool.setuptools.packages.find]
where = ["src"]
"""


def distribution(root: Path) -> Path:
    src = root / "moody"
    package = src / "src" / "coop_score_moody"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(SCORERS)
    (src / "pyproject.toml").write_text(PYPROJECT)
    return src


@pytest.fixture
async def server(engine: str, tmp_path: Path) -> AsyncIterator[Operator]:
    site = tmp_path / "site"
    await asyncio.to_thread(pip_install, distribution(tmp_path), site)
    async with operated(engine, tmp_path, COOP_PLUGIN_PATH=str(site)) as running:
        yield running


async def member_page(browser: Browser, server: Operator, email: str) -> tuple[Page, list[str]]:
    context = await browser.new_context(base_url=server.base_url)
    context.set_default_timeout(20_000)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await sign_up_and_log_in(page, email)
    return page, errors


async def both_widths(page: Page, name: str) -> None:
    await shot(page, name)
    await page.set_viewport_size({"width": 390, "height": 844})
    await shot(page, f"{name}-phone")
    await page.set_viewport_size({"width": 1280, "height": 800})


async def test_enable_and_recompute_answer_at_once_and_the_page_follows_the_run(
    browser: Browser, server: Operator
) -> None:
    page, errors = await member_page(browser, server, "sleepy@example.org")
    await page.set_viewport_size({"width": 1280, "height": 800})
    await page.goto("/scorers")
    card = page.locator("#scorer-sleepy")
    await expect(card).to_contain_text("posts you published: dates only")
    await card.get_by_role("button", name="Enable").click()
    await expect(page.get_by_role("status")).to_contain_text(
        "Sleepy is on. Your score is being computed"
    )
    await expect(card).to_contain_text("Your Sleepy score is being computed.")
    await both_widths(page, "scorers-computing")

    await page.goto("/scores/sleepy")
    main = page.locator("main")
    # Computing, then (coop.js checks again by itself) the score and how the run went.
    await expect(page.get_by_role("heading", level=1)).to_have_text("Sleepy: 0.0")
    await expect(main).to_contain_text("Recomputed: your Sleepy score is 0.0.")

    await page.get_by_role("button", name="Recompute").click()
    await expect(page.get_by_role("status")).to_contain_text(
        "Recomputing your Sleepy score. This page shows the result when it is ready."
    )
    await expect(main).to_contain_text("Your Sleepy score is being recomputed.")
    await expect(main.get_by_role("link", name="Check again")).to_be_visible()
    await both_widths(page, "score-recomputing")
    await expect(main).to_contain_text("Recomputed: your Sleepy score is unchanged at 0.0.")
    await expect(main.get_by_role("link", name="Check again")).to_have_count(0)
    await both_widths(page, "score-recomputed")
    assert not errors


async def test_recompute_feedback_without_javascript(browser: Browser, server: Operator) -> None:
    page, _ = await member_page(browser, server, "nojs@example.org")
    cookies = await page.context.cookies()
    context: BrowserContext = await browser.new_context(
        base_url=server.base_url, java_script_enabled=False
    )
    context.set_default_timeout(20_000)
    await context.add_cookies(cookies)  # type: ignore[arg-type]
    plain = await context.new_page()
    await plain.goto("/scorers")
    await plain.locator("#scorer-sleepy").get_by_role("button", name="Enable").click()
    await expect(plain.get_by_role("status")).to_contain_text("Sleepy is on.")
    await plain.goto("/scores/sleepy")
    main = plain.locator("main")
    for _ in range(60):  # a member without JavaScript follows "Check again"
        check = main.get_by_role("link", name="Check again")
        if not await check.count():
            break
        await plain.wait_for_timeout(500)
        await check.click()
    await expect(plain.get_by_role("heading", level=1)).to_have_text("Sleepy: 0.0")
    await plain.get_by_role("button", name="Recompute").click()
    await expect(plain.get_by_role("status")).to_contain_text("Recomputing your Sleepy score.")
    await expect(main.get_by_role("link", name="Check again")).to_be_visible()
    for _ in range(60):
        check = main.get_by_role("link", name="Check again")
        if not await check.count():
            break
        await plain.wait_for_timeout(500)
        await check.click()
    await expect(main).to_contain_text("Recomputed: your Sleepy score is unchanged at 0.0.")
    await context.close()


async def test_each_missing_score_says_why_in_plain_words(
    browser: Browser, server: Operator
) -> None:
    page, errors = await member_page(browser, server, "why@example.org")
    await page.set_viewport_size({"width": 1280, "height": 800})
    await page.goto("/scores/broken")
    main = page.locator("main")
    await expect(main).to_contain_text(
        "You have not enabled Broken. It reads nothing of yours until you do."
    )
    await both_widths(page, "no-score-not-enabled")

    await main.get_by_role("button", name="Enable").click()
    await page.goto("/scores/broken")
    await expect(main).to_contain_text("Broken could not compute your score.")
    await expect(main).to_contain_text("the cooperative's operator has been told")
    await expect(main).not_to_contain_text("plugin_error")
    await expect(main).not_to_contain_text("No scores yet.")
    await both_widths(page, "no-score-failed")

    await page.goto("/scorers")
    broken = page.locator("#scorer-broken")
    await expect(broken).to_contain_text("Broken could not compute your score.")
    await broken.get_by_role("button", name="Disable").click()
    await page.goto("/scores/broken")
    await expect(main).to_contain_text("You turned Broken off")
    await page.goto("/")
    assert not errors
