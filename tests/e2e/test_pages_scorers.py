"""Scorers in a browser: disabling says beforehand that the scores go, then they are gone;
enabling brings a fresh score back."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import BrowserContext, Page, expect

from tests.e2e import member_data
from tests.e2e.member_data import Member, log_in_as
from tests.e2e.test_journey import nav

member = member_data.member
module_app = member_data.module_app
module_blog = member_data.module_blog

pytestmark = pytest.mark.timeout(120)


async def test_disabling_a_scorer_says_its_scores_go_and_deletes_them(
    page: Page, context: BrowserContext, member: Member
) -> None:
    await log_in_as(context, member)
    await page.goto("/")
    await expect(page.get_by_role("heading", name=re.compile(r"^Cadence: "))).to_be_visible()

    await nav(page, "Scorers")
    cadence = page.locator("#scorer-cadence")
    disable = cadence.get_by_role("button", name="Disable")
    await expect(disable).to_have_accessible_description(
        "Disabling deletes all of your Cadence scores."
    )
    await disable.click()
    await expect(page.get_by_role("status")).to_contain_text(
        re.compile(r"Cadence is off\. (1 score was|[2-9]\d* scores were) deleted\.")
    )
    await expect(cadence.locator(".badge")).to_have_text("off")
    await expect(cadence.get_by_role("button", name="Enable")).to_be_visible()

    await nav(page, "Scores")
    await expect(page.get_by_role("heading", name=re.compile(r"^Reach: "))).to_be_visible()
    await expect(page.get_by_role("heading", name=re.compile(r"^Cadence"))).to_have_count(0)
    await page.goto("/scores/cadence")
    await expect(page.locator("main")).to_contain_text(
        "You turned Cadence off, so it does not run and its scores were deleted."
    )


async def test_enabling_a_scorer_lists_what_it_reads_and_scores_again(
    page: Page, context: BrowserContext, member: Member
) -> None:
    await log_in_as(context, member)
    await page.goto("/scorers")
    cadence = page.locator("#scorer-cadence")
    await expect(cadence.get_by_role("heading", name="What it reads")).to_be_visible()
    await expect(cadence.locator("ul li").first).to_be_visible()
    await cadence.get_by_role("button", name="Enable").click()
    await expect(page.get_by_role("status")).to_contain_text(
        "is on. Your score is being computed; it appears on the Scores page"
    )
    await nav(page, "Scores")
    heading = page.get_by_role("heading", name=re.compile(r"^Cadence: "))
    for _ in range(50):
        if await heading.count():
            break
        await page.wait_for_timeout(200)
        await page.reload()
    await expect(heading).to_be_visible()
