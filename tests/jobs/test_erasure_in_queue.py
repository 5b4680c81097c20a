"""ER-07 through the job queues: a sync or scoring job queued or running for a member who is
erased meanwhile does nothing more: no row written, no upstream request once the erasure is
visible, no job left naming the member. On the embedded default's in-process queue (both
engines) and on PostgreSQL's shared queue (procrastinate, run by an in-process worker)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tortoise import connections

from coop.config import Settings
from coop.connectors import service
from coop.connectors.models import Record, SyncRun
from coop.jobs import pgqueue
from coop.jobs import sync as sync_jobs
from coop.jobs.queue import InProcessQueue
from coop.jobs.scoring import ScoringFlow
from coop.portability import erase, inventory
from coop.scoring import service as scoring
from coop.scoring.models import Score
from coop.scoring.runner import InProcessRunner
from coop.scoring.spec import API_VERSION, InputRecord, ScoreResult
from coop.vault import Vault
from tests.fakes.blog import Blog
from tests.fakes.server import LiveServer
from tests.scoring.factories import add_records, posts


class CountScorer:
    api_version = API_VERSION
    name = "count"
    version = "1.0"
    title = "Count"
    description = "How many posts."
    reads = ("post",)
    range = (0.0, 1000.0)
    needs_text = False
    homepage = ""

    def score(self, records: Sequence[InputRecord], now: datetime) -> ScoreResult:
        return ScoreResult(value=float(len(records)), reasons=[f"{len(records)} posts"])


@pytest.fixture
def blog() -> Blog:
    feed = Blog()
    now = datetime.now(UTC)
    for i in range(3):
        feed.add_post(f"post {i}", body="<p>hi</p>", published=now - timedelta(days=i + 1))
    return feed


@pytest.fixture
def flow(vault: Vault) -> ScoringFlow:
    runner = InProcessRunner()
    runner.add(CountScorer)
    return ScoringFlow(vault=vault, runner=runner)


async def feed_of(
    jobs: sync_jobs.Jobs, member: uuid.UUID, server: LiveServer, path: str = "/rss.xml"
) -> uuid.UUID:
    view = await service.create_connection(
        vault=jobs.vault,
        registry=jobs.registry,
        member_id=member,
        connector="feed",
        config={"url": server.url(path)},
    )
    return view.id


async def in_flight(blog: Blog) -> None:
    """Until the blog has received a request (and holds it for `blog.delay` seconds)."""
    for _ in range(500):
        if blog.requests:
            return
        await asyncio.sleep(0.02)
    pytest.fail("no request reached the blog")


async def enable_count(flow: ScoringFlow, member: uuid.UUID) -> None:
    await scoring.enable_scorer(member_id=member, meta=flow.runner.meta("count"))


async def nothing_left(member: uuid.UUID) -> None:
    assert await inventory.count_rows(member) == {}
    assert await Record.filter(member_id=member).count() == 0
    assert await Score.filter(member_id=member).count() == 0


async def erase_now(vault: Vault, settings: Settings, member: uuid.UUID) -> None:
    await erase.erase_member(vault=vault, settings=settings, member_id=member)


# -- the embedded default: jobs run in this process ----------------------------------------


async def test_a_sync_queued_in_process_for_an_erased_member_never_calls_upstream(
    jobs: sync_jobs.Jobs,
    member: uuid.UUID,
    blog: Blog,
    blog_server: LiveServer,
    vault: Vault,
    settings: Settings,
) -> None:
    connection_id = await feed_of(jobs, member, blog_server)
    queue = InProcessQueue(concurrency=1)
    busy = asyncio.Event()
    queue.submit("busy", busy.wait)  # holds the only slot: the sync waits in the queue
    jobs.engine.queue_run(queue, await jobs.engine.claim(connection_id))
    await asyncio.sleep(0)
    await erase_now(vault, settings, member)
    busy.set()
    await queue.drain()
    assert blog.requests == []
    await nothing_left(member)


async def test_an_in_process_sync_running_when_the_member_is_erased_commits_nothing(
    jobs: sync_jobs.Jobs,
    member: uuid.UUID,
    blog: Blog,
    blog_server: LiveServer,
    vault: Vault,
    settings: Settings,
    flow: ScoringFlow,
) -> None:
    """The feed answers slowly; the erasure lands while the request is in flight: the batch
    is refused, the run ends `withdrawn`, and the scoring hook never runs."""
    await enable_count(flow, member)
    flow.register(jobs.engine)
    connection_id = await feed_of(jobs, member, blog_server, "/slow.xml")
    blog.delay = 2.0
    run = asyncio.create_task(jobs.engine.run(connection_id))
    await in_flight(blog)
    await erase_now(vault, settings, member)
    outcome = await run
    assert outcome.outcome == "withdrawn"
    assert len(blog.requests) == 1  # none after the erasure
    await nothing_left(member)


async def test_scoring_for_a_member_whose_key_is_gone_stores_nothing(
    member: uuid.UUID, vault: Vault, flow: ScoringFlow
) -> None:
    """Between the key's destruction and the purge of their rows, a rescore finds the member
    still enabled but unreadable: it stops without a score and without an error."""
    await add_records(vault, member, posts(datetime.now(UTC), 3))
    await enable_count(flow, member)
    await vault.shred(member)  # the erasure's first step
    assert await flow.recompute_member(member_id=member) == []
    assert await Score.filter(member_id=member).count() == 0


# -- PostgreSQL: the shared queue (procrastinate) -------------------------------------------


@dataclasses.dataclass
class SharedQueue:
    app: Any
    jobs: sync_jobs.Jobs

    async def run_until_empty(self) -> None:
        """A worker in this process that takes every waiting job, then stops."""
        await self.app.run_worker_async(
            queues=["sync", "scoring"],
            wait=False,
            install_signal_handlers=False,
            delete_jobs="successful",  # as coop's workers run (coop.jobs.pgqueue)
        )

    async def waiting(self, member: uuid.UUID) -> list[str]:
        rows = await self.app.connector.execute_query_all_async(
            "SELECT task_name FROM procrastinate_jobs WHERE args->>'member_id' = %(m)s",
            m=str(member),
        )
        return sorted(r["task_name"] for r in rows)


@pytest.fixture
async def shared(
    engine: str, jobs: sync_jobs.Jobs, settings: Settings, vault: Vault, flow: ScoringFlow
) -> AsyncIterator[SharedQueue]:
    if engine != "postgres":
        pytest.skip("the shared queue runs on PostgreSQL")
    await pgqueue.apply_schema(settings)
    app = pgqueue.build(settings)
    async with app.open_async():
        jobs.dispatch = pgqueue.dispatcher(app)
        jobs.engine.after_sync[:] = [pgqueue.rescore_later(app)]
        pgqueue._workload = pgqueue.Workload(settings, vault, jobs.engine, flow)
        try:
            yield SharedQueue(app, jobs)
        finally:
            pgqueue._workload = None
            await connections.get("default").execute_script("DELETE FROM procrastinate_jobs")


async def test_queued_shared_jobs_of_an_erased_member_are_dropped_and_never_run(
    shared: SharedQueue,
    member: uuid.UUID,
    blog: Blog,
    blog_server: LiveServer,
    vault: Vault,
    settings: Settings,
    flow: ScoringFlow,
) -> None:
    await enable_count(flow, member)
    connection_id = await feed_of(shared.jobs, member, blog_server)
    await sync_jobs.sync_now(shared.jobs, member_id=member, connection_id=connection_id)
    await pgqueue.defer_score(shared.app, member)
    assert await shared.waiting(member) == ["coop.score", "coop.sync"]
    await erase_now(vault, settings, member)
    assert await shared.waiting(member) == []  # dropped with the key (ER-04: no id left)
    await shared.run_until_empty()
    assert blog.requests == []
    await nothing_left(member)


async def test_a_shared_sync_running_when_the_member_is_erased_commits_nothing(
    shared: SharedQueue,
    member: uuid.UUID,
    blog: Blog,
    blog_server: LiveServer,
    vault: Vault,
    settings: Settings,
    flow: ScoringFlow,
) -> None:
    await enable_count(flow, member)
    connection_id = await feed_of(shared.jobs, member, blog_server, "/slow.xml")
    await sync_jobs.sync_now(shared.jobs, member_id=member, connection_id=connection_id)
    blog.delay = 2.0
    worker = asyncio.create_task(shared.run_until_empty())
    await in_flight(blog)
    await erase_now(vault, settings, member)
    await worker
    assert len(blog.requests) == 1  # none after the erasure
    assert await shared.waiting(member) == []  # no rescore queued, nothing failed and kept
    await nothing_left(member)
    assert await SyncRun.filter(connection_id=connection_id).count() == 0


async def test_a_shared_rescore_queued_after_the_erasure_does_nothing(
    shared: SharedQueue, member: uuid.UUID, vault: Vault, settings: Settings, flow: ScoringFlow
) -> None:
    """A sync that ended in the instant before the erasure may queue a rescore after it: the
    job runs, finds nobody to score, and succeeds without a row."""
    await add_records(vault, member, posts(datetime.now(UTC), 3))
    await enable_count(flow, member)
    await vault.shred(member)  # key gone, rows not yet purged
    await pgqueue.defer_score(shared.app, member)
    await shared.run_until_empty()
    assert await shared.waiting(member) == []  # succeeded (and deleted), not failed
    assert await Score.filter(member_id=member).count() == 0
