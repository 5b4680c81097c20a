"""A scoring job that raises (here: a record whose ciphertext no longer opens) leaves none
of the scores it was asked for "queued": they read `job_failed` (the Scores page words it,
tests/web/test_score_runs.py), the job ends without a retry or a failed row to keep, the
error's type alone is logged, and the next job scores them. PostgreSQL's shared queue
(procrastinate, `coop.score`, run by an in-process worker); the in-process queue of the
embedded default is tested through the member's pages on both engines."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from tortoise import connections

from coop.config import Settings
from coop.connectors.models import Record
from coop.jobs import pgqueue
from coop.jobs import sync as sync_jobs
from coop.jobs.scoring import ScoringFlow
from coop.scoring.models import Score, ScorerConsent
from coop.scoring.runner import InProcessRunner
from coop.vault import Vault
from tests.jobs.test_erasure_in_queue import CountScorer, SharedQueue, enable_count
from tests.scoring.factories import add_records, posts


@pytest.fixture
def flow(vault: Vault) -> ScoringFlow:
    runner = InProcessRunner()
    runner.add(CountScorer)
    return ScoringFlow(vault=vault, runner=runner)


@pytest.fixture
async def shared(
    engine: str, jobs: sync_jobs.Jobs, settings: Settings, vault: Vault, flow: ScoringFlow
) -> AsyncIterator[SharedQueue]:
    if engine != "postgres":
        pytest.skip("the shared queue runs on PostgreSQL")
    await pgqueue.apply_schema(settings)
    app = pgqueue.build(settings)
    async with app.open_async():
        pgqueue._workload = pgqueue.Workload(settings, vault, jobs.engine, flow)
        try:
            yield SharedQueue(app, jobs)
        finally:
            pgqueue._workload = None
            await connections.get("default").execute_script("DELETE FROM procrastinate_jobs")


async def spoil_a_record(member: uuid.UUID) -> tuple[uuid.UUID, bytes]:
    row = await Record.filter(member_id=member).order_by("occurred_at").first()
    assert row is not None
    sealed = bytes(row.body_sealed)
    await Record.filter(id=row.id).update(body_sealed=sealed[:-1] + bytes([sealed[-1] ^ 1]))
    return row.id, sealed


async def status(member: uuid.UUID) -> str:
    row = await ScorerConsent.get(member_id=member, scorer="count")
    return row.last_status


async def test_a_shared_rescore_that_raises_leaves_nothing_queued_and_the_next_one_scores(
    shared: SharedQueue,
    member: uuid.UUID,
    vault: Vault,
    flow: ScoringFlow,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await add_records(vault, member, posts(datetime.now(UTC), 3))
    await enable_count(flow, member)

    async def defer(member_id: uuid.UUID) -> None:
        await pgqueue.defer_score(shared.app, member_id)

    flow.defer = defer  # as web processes on PostgreSQL queue Recompute
    record_id, sealed = await spoil_a_record(member)
    caplog.set_level(logging.INFO)
    assert await flow.recompute_soon(member_id=member) == ["count"]
    assert await status(member) == "queued"
    assert await shared.waiting(member) == ["coop.score"]

    await shared.run_until_empty()
    assert await status(member) == "job_failed"
    assert await shared.waiting(member) == []  # ended: not retried, no failed row kept
    assert await Score.filter(member_id=member).count() == 0
    failed = [r for r in caplog.records if r.getMessage() == "scoring job failed"]
    assert [getattr(r, "error", None) for r in failed] == ["IntegrityError"]
    assert not [r for r in caplog.records if r.exc_info or "integrity check" in r.getMessage()]

    await Record.filter(id=record_id).update(body_sealed=sealed)  # as its next sync would
    assert await flow.recompute_soon(member_id=member) == ["count"]
    await shared.run_until_empty()
    assert await status(member) == "stored"
    assert (await Score.get(member_id=member, scorer="count")).value == 3.0
    assert await shared.waiting(member) == []


async def test_a_shared_rescore_after_a_sync_that_raises_leaves_other_statuses_alone(
    shared: SharedQueue, member: uuid.UUID, vault: Vault, flow: ScoringFlow
) -> None:
    """After a sync nothing is marked queued: a failing rescore then changes no status (the
    last run's outcome stays what it was)."""
    await add_records(vault, member, posts(datetime.now(UTC), 3))
    await enable_count(flow, member)
    await flow.recompute_member(member_id=member)
    assert await status(member) == "stored"
    await spoil_a_record(member)
    await pgqueue.defer_score(shared.app, member)  # what rescore_later does after a sync
    await shared.run_until_empty()
    assert await status(member) == "stored"
    assert await shared.waiting(member) == []
