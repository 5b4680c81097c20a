"""The job queue and the scheduler's place in the app lifespan."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from coop.config import Settings
from coop.jobs import sync as sync_jobs
from coop.jobs.queue import InProcessQueue


async def test_a_failing_job_never_stops_the_others() -> None:
    queue = InProcessQueue(concurrency=2)
    done: list[int] = []

    async def ok(n: int) -> None:
        await asyncio.sleep(0)
        done.append(n)

    async def boom() -> None:
        raise RuntimeError("job bug")

    queue.submit("boom", boom)
    for n in range(5):
        queue.submit(f"ok{n}", lambda n=n: ok(n))  # type: ignore[misc]
    await queue.drain()
    assert sorted(done) == [0, 1, 2, 3, 4]
    assert queue.pending == 0


async def test_closing_the_queue_cancels_running_jobs_and_refuses_new_ones() -> None:
    queue = InProcessQueue()
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    queue.submit("forever", forever)
    await started.wait()
    await queue.close()
    assert queue.pending == 0
    with pytest.raises(RuntimeError):
        queue.submit("late", forever)


async def test_the_app_lifespan_starts_and_stops_the_scheduler(settings: Settings, db: str) -> None:
    from coop.app import build_app

    app = build_app(dataclasses.replace(settings, scheduler=True), manage_db=False)
    jobs = sync_jobs.get_jobs(app.state.runtime)
    async with app.router.lifespan_context(app):
        assert jobs.scheduler._task is not None and not jobs.scheduler._task.done()
    assert jobs.scheduler._task is None


async def test_coop_scheduler_0_keeps_the_scheduler_off(settings: Settings, db: str) -> None:
    from coop.app import build_app

    assert Settings.from_env({"COOP_SCHEDULER": "0"}).scheduler is False
    app = build_app(settings, manage_db=False)  # the test settings turn it off
    jobs = sync_jobs.get_jobs(app.state.runtime)
    async with app.router.lifespan_context(app):
        assert jobs.scheduler._task is None
