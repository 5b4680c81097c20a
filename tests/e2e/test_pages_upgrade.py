"""A new scorer version in a real browser against a real `coop serve`, upgraded the way an
operator does it: a plugin distribution pip-installed into COOP_PLUGIN_PATH, then a newer one
installed over it and the server restarted.

1.0.0 gives 63 -> 1.1.0 would give 58: the member sees the preview with its cause, keeps
the current score (frozen, out of date), then accepts the new version (current again).
2.0.0 also reads public activity: the member is asked, and disables the scorer instead.

Set COOP_E2E_SCREENSHOTS=<folder> to save the preview at desktop and phone width.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from tests.e2e.conftest import Operator, operated
from tests.e2e.test_journey import shot, sign_up_and_log_in
from tests.scoring.test_upgrade import pip_install

pytestmark = pytest.mark.timeout(300)

SCORER = """
from coop.scoring.spec import API_VERSION, Contribution, ScoreResult


class UpgradeScorer:
    api_version = API_VERSION
    name = "upgrade"
    version = "{version}"
    title = "Upgrade"
    description = "A constant, to show what a new version alone changes."
    reads = {reads!r}
    range = (0.0, 100.0)
    needs_text = False
    homepage = ""

    def score(self, records, now):
        return ScoreResult(
            value={value},
            contributions=[Contribution(amount={value}, reason="the formula of {version}")],
            reasons=["version {version} gives {value} to everyone"],
        )
"""
PYPROJECT = """
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "coop-score-upgrade"
version = "{version}"
requires-python = ">=3.11"

[project.entry-points."coop.scorers"]
upgrade = "coop_score_upgrade:UpgradeScorer"

[tool.setuptools.packages.find]
where = ["src"]
"""


def release(root: Path, version: str, value: float, reads: tuple[str, ...]) -> Path:
    src = root / f"upgrade-{version}"
    package = src / "src" / "coop_score_upgrade"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(SCORER.format(version=version, value=value, reads=reads))
    (src / "pyproject.toml").write_text(PYPROJECT.format(version=version))
    return src


@pytest.fixture
async def operator(engine: str, tmp_path: Path) -> AsyncIterator[Operator]:
    site = tmp_path / "site"
    await asyncio.to_thread(pip_install, release(tmp_path, "1.0.0", 63.0, ("post",)), site)
    async with operated(engine, tmp_path, COOP_PLUGIN_PATH=str(site)) as running:
        yield running


async def upgrade(server: Operator, source: Path) -> None:
    """Install `source` over the server's plugin folder and restart it, as an operator does."""
    await server.stop()
    await asyncio.to_thread(pip_install, source, Path(server.env["COOP_PLUGIN_PATH"]))
    await server.start()


async def flash(page: Page, text: str) -> None:
    await expect(page.get_by_role("status")).to_contain_text(text)


async def test_a_member_previews_keeps_accepts_and_disables_new_versions(
    browser: Browser, operator: Operator, tmp_path: Path
) -> None:
    context = await browser.new_context(base_url=operator.base_url)
    context.set_default_timeout(15_000)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await sign_up_and_log_in(page, "upgrade@example.org")
    await page.goto("/scorers")
    await page.locator("#scorer-upgrade").get_by_role("button", name="Enable").click()
    await flash(page, "Upgrade is on.")
    await page.goto("/scores/upgrade")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Upgrade: 63.0")

    # The operator installs 1.1.0 (same reads, another formula): a preview, not a score.
    await upgrade(operator, release(tmp_path, "1.1.0", 58.0, ("post",)))
    await page.goto("/scores/upgrade")
    await page.get_by_role("button", name="Recompute").click()
    notice = page.get_by_role("region", name="Version 1.1.0 would give 58.0 (now 63.0)")
    await expect(notice).to_be_visible()
    await expect(notice).to_contain_text("new scorer version")
    await expect(notice).to_contain_text("-5.00 Version 1.0.0 → 1.1.0")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Upgrade: 63.0")
    await shot(page, "score-preview")
    await page.set_viewport_size({"width": 390, "height": 844})
    await shot(page, "score-preview-phone")
    await page.set_viewport_size({"width": 1280, "height": 800})

    await notice.get_by_role("button", name="Keep current score").click()
    await flash(page, "You kept your current Upgrade score; version 1.1.0 does not run.")
    kept = page.get_by_role("region", name="You kept the score of version 1.0.0")
    await expect(kept).to_be_visible()
    await expect(page.locator("main")).to_contain_text("Out of date: You kept the last score")
    await expect(kept.get_by_role("button", name="Keep current score")).to_have_count(0)

    await kept.get_by_role("button", name="Accept new version").click()
    await flash(page, "You accepted Upgrade 1.1.0. Your score is being recomputed with it.")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Upgrade: 58.0")
    await expect(page.locator(".notice")).to_have_count(0)
    await expect(page.locator("main")).to_contain_text("new scorer version")

    # 2.0.0 also reads public activity: it does not run until the member answers.
    await upgrade(operator, release(tmp_path, "2.0.0", 70.0, ("post", "activity")))
    await page.goto("/")
    asked = page.get_by_role("region", name="Version 2.0.0 of Upgrade asks to read more")
    await page.get_by_role("button", name="Recompute").first.click()
    await expect(asked).to_contain_text("your public activity (dates and types, no content)")
    await expect(page.get_by_role("heading", name=re.compile(r"Upgrade.*: 58\.0"))).to_be_visible()
    await asked.get_by_role("button", name="Disable").click()
    await expect(page.get_by_role("status")).to_contain_text(
        re.compile(r"Upgrade is off\. \d+ scores? (was|were) deleted\.")
    )
    await context.close()
    assert not errors
