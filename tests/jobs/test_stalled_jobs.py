"""PostgreSQL's shared queue after a worker died in the middle of jobs (kill -9: no clean-up,
its heartbeats stop). `coop.recover` (pgqueue.retry_stalled) hands each of its jobs back, one
by one: a job whose work is already queued again under the same queueing lock (the member's
next rescore, the next periodic tick) cannot be waiting twice, so it is dropped instead of
failing the whole pass, and the other stalled jobs are still retried.

The real kill -9 of a `coop worker` process is in tests/cluster/test_crash.py."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import procrastinate
import pytest

from coop.config import Settings
from coop.jobs import pgqueue


@pytest.fixture
async def queue(engine: str, db: str, settings: Settings) -> AsyncIterator[procrastinate.App]:
    if engine != "postgres":
        pytest.skip("the shared queue runs on PostgreSQL")
    await pgqueue.apply_schema(settings)
    app = pgqueue.build(settings)
    async with app.open_async():
        try:
            yield app
        finally:
            await app.connector.execute_query_async(
                "DELETE FROM procrastinate_jobs; DELETE FROM procrastinate_workers"
            )


async def rows(app: procrastinate.App) -> dict[int, tuple[str, str, int]]:
    found = await app.connector.execute_query_all_async(
        "SELECT id, status, queueing_lock, attempts FROM procrastinate_jobs"
    )
    return {r["id"]: (str(r["status"]), r["queueing_lock"], r["attempts"]) for r in found}


async def taken_by(app: procrastinate.App, worker_id: int) -> int:
    job = await app.job_manager.fetch_job(queues=None, worker_id=worker_id)
    assert job is not None and job.id is not None
    return job.id


async def dies(app: procrastinate.App, worker_id: int) -> None:
    """What kill -9 leaves: the worker's row, with heartbeats that stopped a while ago."""
    await app.connector.execute_query_async(
        "UPDATE procrastinate_workers SET last_heartbeat = now() - interval '10 minutes' "
        "WHERE id = %(id)s",
        id=worker_id,
    )


async def test_a_dead_workers_jobs_are_retried_even_when_one_is_queued_again(
    queue: procrastinate.App,
) -> None:
    covered, alone = uuid.uuid4(), uuid.uuid4()
    worker = await queue.job_manager.register_worker()
    await pgqueue.defer_score(queue, covered)
    first = await taken_by(queue, worker)
    await pgqueue.defer_score(queue, alone)
    second = await taken_by(queue, worker)
    # While the first rescore hangs, the member asks again: a waiting job, same lock.
    await pgqueue.defer_score(queue, covered)
    waiting = next(i for i, row in (await rows(queue)).items() if row[0] == "todo")
    await dies(queue, worker)

    assert await pgqueue.retry_stalled(queue) == 1

    after = await rows(queue)
    assert first not in after  # its work is the waiting job's: not kept, not failed
    assert after[waiting] == ("todo", f"score:{covered}", 0)
    assert after[second] == ("todo", f"score:{alone}", 1)  # handed back, one attempt spent
    assert await pgqueue.retry_stalled(queue) == 0  # nothing left "doing"


async def test_a_live_workers_jobs_are_left_alone(queue: procrastinate.App) -> None:
    worker = await queue.job_manager.register_worker()
    await pgqueue.defer_score(queue, uuid.uuid4())
    job = await taken_by(queue, worker)
    assert await pgqueue.retry_stalled(queue) == 0
    assert (await rows(queue))[job][0] == "doing"
