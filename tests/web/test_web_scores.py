"""The Scores and Scorers pages: enable with what it reads, dashboard with an inline SVG
history chart and the latest change, score detail, recompute, disable deletes scores."""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from coop.jobs import scoring as scoring_jobs
from coop.members.models import Member
from coop.scoring.models import Score
from coop.types import utcnow
from coop.vault import Vault
from coop.web.templating import static_url
from tests.scoring.factories import add_records, posts
from tests.web.journeys import finish_jobs, log_in_new_member, post_form

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def member_client(app: Any, client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    await log_in_new_member(client)
    try:
        yield client
    finally:
        await scoring_jobs.close(app.state.runtime)


async def member_with_records(vault: Vault, n: int = 12) -> Member:
    member = await Member.all().first()
    assert member is not None
    await add_records(vault, member.id, posts(utcnow(), n, every_days=4))
    return member


async def test_scorers_page_lists_what_each_scorer_reads(
    member_client: httpx.AsyncClient,
) -> None:
    page = await member_client.get("/scorers")
    assert page.status_code == 200
    assert "Reach" in page.text and "Cadence" in page.text
    assert "posts you published, with their reaction counts" in page.text
    assert "your public repositories, with star and fork counts" in page.text
    assert page.text.count(">Enable</button>") >= 2
    assert "Disabling a scorer deletes its scores." in page.text


async def test_enabling_scores_and_the_dashboard_explains(
    app: Any, member_client: httpx.AsyncClient, vault: Vault
) -> None:
    member = await member_with_records(vault)
    enabled = await post_form(member_client, "/scorers/reach/enable", page="/scorers")
    assert enabled.status_code == 303
    await finish_jobs(app)
    assert await Score.filter(member_id=member.id, scorer="reach").count() == 1
    scorers = await member_client.get("/scorers")
    assert ">Disable</button>" in scorers.text
    assert "Disabling deletes all of your Reach scores." in scorers.text
    home = await member_client.get("/")
    assert home.status_code == 200
    assert re.search(r"Reach</a>: \d+\.\d", home.text)
    assert "Top contributions" in home.text
    assert "This is the first score" in home.text
    # The only script is coop's own (member data never becomes markup).
    assert re.findall(r"<script[^>]*>", home.text) == [
        f'<script src="{static_url("coop.js")}" defer>'
    ]


async def test_recompute_draws_history_and_says_why_it_changed(
    app: Any, member_client: httpx.AsyncClient, vault: Vault
) -> None:
    member = await member_with_records(vault)
    await post_form(member_client, "/scorers/reach/enable", page="/scorers")
    await finish_jobs(app)
    await add_records(vault, member.id, posts(utcnow(), 3, start=500))
    done = await post_form(member_client, "/scores/recompute", page="/")
    assert done.status_code == 303
    await finish_jobs(app)
    home = await member_client.get("/")
    assert "<svg" in home.text and "<polyline" in home.text
    assert "new data" in home.text
    detail = await member_client.get("/scores/reach")
    assert detail.status_code == 200
    assert "About this scorer" in detail.text
    assert f"version {importlib.metadata.version('coop-score-reach')}" in detail.text
    assert "Never the text of your posts." in detail.text
    assert detail.text.count("<tr>") >= 3  # header + two history rows
    assert "half-life" in detail.text


async def test_disabling_deletes_the_scores(
    app: Any, member_client: httpx.AsyncClient, vault: Vault
) -> None:
    member = await member_with_records(vault)
    await post_form(member_client, "/scorers/cadence/enable", page="/scorers")
    await finish_jobs(app)
    assert await Score.filter(member_id=member.id).count() == 1
    off = await post_form(member_client, "/scorers/cadence/disable", page="/scorers")
    assert off.status_code == 303
    assert await Score.filter(member_id=member.id).count() == 0
    home = await member_client.get("/")
    assert "No scores yet." in home.text


async def test_unknown_scorer_is_not_found(member_client: httpx.AsyncClient) -> None:
    page = await member_client.get("/scores/no-such-scorer")
    assert page.status_code == 404
