"""Enable and Recompute answer at once and score in the background; the score page says
how the run went, and, where there is no score, why, in plain words (issue 16).

The scorer's run is held at a gate the test opens, so the order of events is asserted
(the answer came while the scorer was still running), never a duration."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from coop.connectors.models import Record
from coop.errors import ScorerError, ScorerTimeoutError
from coop.jobs import scoring as scoring_jobs
from coop.jobs.recovery import recover_interrupted
from coop.members.models import Member
from coop.scoring import service as scoring_service
from coop.scoring.models import Score, ScorerConsent
from coop.types import utcnow
from coop.vault import Vault
from tests.scoring.factories import add_records, posts
from tests.web.journeys import finish_jobs, log_in_new_member, post_form

pytestmark = pytest.mark.timeout(90)


class Gate:
    """Holds every scorer run until `open()`, and logs what happened in order."""

    def __init__(self, flow: scoring_jobs.ScoringFlow, monkeypatch: pytest.MonkeyPatch) -> None:
        self.events: list[str] = []
        self._open = asyncio.Event()
        self.fail: Exception | None = None
        run = flow.runner.run

        async def gated(**kwargs: Any) -> Any:
            self.events.append("scorer started")
            await self._open.wait()
            try:
                if self.fail is not None:
                    raise self.fail
                return await run(**kwargs)
            finally:
                self.events.append("scorer finished")

        monkeypatch.setattr(flow.runner, "run", gated)

    def open(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._open.clear()


@pytest.fixture
async def member_client(app: Any, client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    await log_in_new_member(client)
    yield client


@pytest.fixture
async def gate(app: Any, monkeypatch: pytest.MonkeyPatch) -> Gate:
    flow = scoring_jobs.flow_for(app.state.runtime)
    await flow.start()
    return Gate(flow, monkeypatch)


async def the_member(vault: Vault, records: int = 8) -> Member:
    member = await Member.all().first()
    assert member is not None
    if records:
        await add_records(vault, member.id, posts(utcnow(), records, every_days=4))
    return member


async def test_enable_answers_before_the_scorer_finishes_and_the_page_says_computing(
    app: Any, member_client: httpx.AsyncClient, vault: Vault, gate: Gate
) -> None:
    member = await the_member(vault)
    enabled = await post_form(member_client, "/scorers/reach/enable", page="/scorers")
    gate.events.append("enable answered")
    assert enabled.status_code == 303
    assert await Score.filter(member_id=member.id).count() == 0
    scorers = await member_client.get("/scorers")
    assert "Reach is on. Your score is being computed" in scorers.text
    assert "Your Reach score is being computed." in scorers.text
    detail = await member_client.get("/scores/reach")
    assert "Computing your score" in detail.text and "data-computing" in detail.text
    assert 'href="/scores/reach">Check again</a>' in detail.text  # without JavaScript
    home = await member_client.get("/")
    assert "Computing: Reach." in home.text

    gate.open()
    await finish_jobs(app)
    assert gate.events.index("enable answered") < gate.events.index("scorer finished")
    assert await Score.filter(member_id=member.id, scorer="reach").count() == 1
    detail = await member_client.get("/scores/reach")
    assert "data-computing" not in detail.text
    value = (await Score.get(member_id=member.id, scorer="reach")).value
    assert f"Recomputed: your Reach score is {value:.1f}." in detail.text


async def test_recompute_is_queued_then_shows_the_new_value(
    app: Any, member_client: httpx.AsyncClient, vault: Vault, gate: Gate
) -> None:
    member = await the_member(vault)
    gate.open()
    await post_form(member_client, "/scorers/reach/enable", page="/scorers")
    await finish_jobs(app)
    gate.close()
    gate.events.clear()
    await add_records(vault, member.id, posts(utcnow(), 3, start=100))

    asked = await post_form(
        member_client, "/scores/recompute", {"scorer": "reach"}, page="/scores/reach"
    )
    gate.events.append("recompute answered")
    assert asked.status_code == 303 and asked.headers["location"] == "/scores/reach"
    queued = await member_client.get("/scores/reach")
    assert "Recomputing your Reach score. This page shows the result when it is ready." in (
        queued.text
    )
    assert "Your Reach score is being recomputed." in queued.text
    assert "data-computing" in queued.text

    gate.open()
    await finish_jobs(app)
    assert gate.events.index("recompute answered") < gate.events.index("scorer finished")
    latest = await Score.filter(member_id=member.id, scorer="reach").order_by("-computed_at")
    assert len(latest) == 2
    done = await member_client.get("/scores/reach")
    assert f"Recomputed: your Reach score is {latest[0].value:.1f}." in done.text
    assert "Recomputing your Reach score" not in done.text  # the flash was shown once


async def test_a_failed_recompute_says_why_in_plain_words_and_keeps_the_score(
    app: Any, member_client: httpx.AsyncClient, vault: Vault, gate: Gate
) -> None:
    member = await the_member(vault)
    gate.open()
    await post_form(member_client, "/scorers/reach/enable", page="/scorers")
    await finish_jobs(app)
    gate.fail = ScorerError("raised KeyError")
    await post_form(member_client, "/scores/recompute", {"scorer": "reach"}, page="/scores/reach")
    await finish_jobs(app)
    page = await member_client.get("/scores/reach")
    assert "Reach could not compute your score." in page.text
    assert "the cooperative&#39;s operator has been told" in page.text
    assert "Your previous score stays." in page.text
    assert "plugin_error" not in page.text and "KeyError" not in page.text
    assert await Score.filter(member_id=member.id).count() == 1


async def test_no_score_because_the_first_run_failed(
    app: Any, member_client: httpx.AsyncClient, vault: Vault, gate: Gate
) -> None:
    await the_member(vault)
    gate.fail = ScorerTimeoutError()
    gate.open()
    await post_form(member_client, "/scorers/reach/enable", page="/scorers")
    await finish_jobs(app)
    page = await member_client.get("/scores/reach")
    assert "No score yet" in page.text
    assert "Reach took longer than this cooperative allows and was stopped." in page.text
    assert "not in your data or anything you did" in page.text
    assert "No scores yet." not in page.text and "plugin_timeout" not in page.text
    scorers = await member_client.get("/scorers")
    assert "took longer than this cooperative allows" in scorers.text


async def test_a_run_a_restart_cut_short_says_so_calmly_and_offers_recompute(
    app: Any, member_client: httpx.AsyncClient, vault: Vault, gate: Gate
) -> None:
    """What a SQLite `coop serve` starting after a crash leaves (coop.jobs.recovery)."""
    await the_member(vault)
    await post_form(member_client, "/scorers/reach/enable", page="/scorers")  # held at the gate
    assert (await recover_interrupted()).scorers == 1
    page = await member_client.get("/scores/reach")
    assert '<section class="card no-score run-interrupted"' in page.text
    assert "coop restarted before it could compute your Reach score." in page.text
    assert "Recompute (above)" not in page.text  # the words already say it
    scorers = await member_client.get("/scorers")
    assert "did not finish: coop restarted before it could compute" in scorers.text
    assert "failed: coop restarted" not in scorers.text and "run-failed" not in scorers.text
    card = scorers.text[scorers.text.index('id="scorer-reach"') :]
    assert '<input type="hidden" name="scorer" value="reach">' in card.split("</section>")[0]
    gate.open()
    await post_form(member_client, "/scores/recompute", {"scorer": "reach"}, page="/scorers")
    await finish_jobs(app)
    assert "Recomputed: your Reach score is" in (await member_client.get("/scores/reach")).text


async def test_no_score_because_never_enabled_offers_enable(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    await the_member(vault)
    page = await member_client.get("/scores/reach")
    assert page.status_code == 200
    assert "You have not enabled Reach. It reads nothing of yours until you do." in page.text
    assert 'action="/scorers/reach/enable"' in page.text


async def test_no_score_because_turned_off(
    app: Any, member_client: httpx.AsyncClient, vault: Vault
) -> None:
    await the_member(vault)
    await post_form(member_client, "/scorers/cadence/enable", page="/scorers")
    await finish_jobs(app)
    await post_form(member_client, "/scorers/cadence/disable", page="/scorers")
    page = await member_client.get("/scores/cadence")
    assert "You turned Cadence off" in page.text


async def test_no_score_because_no_records_of_the_kinds_it_reads(
    app: Any, member_client: httpx.AsyncClient, vault: Vault, gate: Gate
) -> None:
    member = await the_member(vault, records=0)
    await post_form(member_client, "/scorers/reach/enable", page="/scorers")
    # Enabled, not run yet (the run waits at the gate), no posts: the member learns why.
    await ScorerConsent.filter(member_id=member.id, scorer="reach").update(last_status="")
    page = await member_client.get("/scores/reach")
    assert "and coop has none of yours yet" in page.text
    assert 'href="/connectors">Connect a source</a>' in page.text
    gate.open()


async def spoil(record_id: uuid.UUID) -> bytes:
    """Flip one bit of a stored record's ciphertext (a damaged disk page, a bad restore): it
    no longer opens. Returns the bytes to put back."""
    row = await Record.get(id=record_id)
    sealed = bytes(row.body_sealed)
    await Record.filter(id=row.id).update(body_sealed=sealed[:-1] + bytes([sealed[-1] ^ 1]))
    return sealed


async def statuses(member_id: uuid.UUID) -> dict[str, str]:
    rows = await ScorerConsent.filter(member_id=member_id).values_list("scorer", "last_status")
    return {str(name): str(status) for name, status in rows}


async def test_a_rescore_stopped_by_an_error_is_not_left_computing_and_runs_again(
    app: Any,
    member_client: httpx.AsyncClient,
    vault: Vault,
    gate: Gate,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A record that cannot be decrypted makes the scoring job raise before any scorer
    runs: both scores it marked queued say so, in one sentence on Scores, and a Recompute
    once the record reads again computes them."""
    member = await the_member(vault)
    gate.open()
    await post_form(member_client, "/scorers/reach/enable", page="/scorers")
    await post_form(member_client, "/scorers/cadence/enable", page="/scorers")
    await finish_jobs(app)
    assert await Score.filter(member_id=member.id).count() == 2
    # A new record that cannot be opened (the pages show none: no score points at it yet).
    [record_id] = await add_records(vault, member.id, posts(utcnow(), 1, start=100))
    sealed = await spoil(record_id)
    gate.events.clear()

    caplog.set_level(logging.INFO)
    await post_form(member_client, "/scores/recompute", page="/")
    assert await statuses(member.id) == {"cadence": "queued", "reach": "queued"}
    await finish_jobs(app)
    assert await statuses(member.id) == {"cadence": "job_failed", "reach": "job_failed"}
    assert gate.events == []  # it stopped before any scorer ran
    home = await member_client.get("/")
    assert "Computing:" not in home.text and "data-computing" not in home.text
    assert (
        "coop ran into an error of its own before it could compute your Cadence and Reach "
        "scores. It was not caused by anything you did, and nothing was stored: Recompute to "
        "try again (it also runs after your next sync)."
    ) in home.text
    detail = await member_client.get("/scores/reach")
    assert "data-computing" not in detail.text
    assert "before it could compute your Reach score. It was not caused" in detail.text
    assert "Your previous score stays." in detail.text
    scorers = await member_client.get("/scorers")
    assert "failed: coop ran into an error of its own" in scorers.text
    card = scorers.text[scorers.text.index('id="scorer-reach"') :].split("</section>")[0]
    assert '<input type="hidden" name="scorer" value="reach">' in card  # its Recompute
    for page in (home.text, detail.text, scorers.text):
        assert "job_failed" not in page and "ntegrity" not in page
    failed = [r for r in caplog.records if r.getMessage() == "scoring job failed"]
    assert [getattr(r, "error", None) for r in failed] == ["IntegrityError"]
    assert not [r for r in caplog.records if r.exc_info or "integrity check" in r.getMessage()]
    assert await Score.filter(member_id=member.id).count() == 2  # nothing stored, none lost

    await Record.filter(id=record_id).update(body_sealed=sealed)  # as its next sync would
    await post_form(member_client, "/scores/recompute", page="/")
    await finish_jobs(app)
    assert set((await statuses(member.id)).values()) <= {"stored", "unchanged"}
    home = await member_client.get("/")
    assert "ran into an error" not in home.text
    detail = await member_client.get("/scores/reach")
    assert "Recomputed: your Reach score" in detail.text
    assert "ran into an error" not in detail.text


async def test_a_damaged_record_behind_a_contribution_leaves_the_score_pages_readable(
    app: Any,
    member_client: httpx.AsyncClient,
    vault: Vault,
    gate: Gate,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The pages link each contribution to its record; a record that no longer opens loses
    its link, not the page (it answered 500): the contribution's amount and reason come from
    the score's own explanation, which still opens."""
    member = await the_member(vault)
    gate.open()
    await post_form(member_client, "/scorers/reach/enable", page="/scorers")
    await finish_jobs(app)
    [current] = await scoring_service.list_current_scores(vault=vault, member_id=member.id)
    assert current.explanation is not None
    shown = [c for c in current.explanation.contributions if c.record_id]
    assert shown, "reach explains its score by records"
    before = (await member_client.get("/scores/reach")).text
    await spoil(uuid.UUID(shown[0].record_id))

    caplog.set_level(logging.WARNING)
    for path in ("/scores/reach", "/"):
        page = await member_client.get(path)
        assert page.status_code == 200, (path, page.status_code)
        assert shown[0].reason in page.text
    detail = await member_client.get("/scores/reach")
    assert detail.text.count("<li><strong>") == before.count("<li><strong>")
    unreadable = [r for r in caplog.records if r.getMessage() == "record unreadable"]
    assert unreadable and all(getattr(r, "error", None) == "IntegrityError" for r in unreadable)
