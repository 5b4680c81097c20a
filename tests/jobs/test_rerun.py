"""A sync job that runs again must change nothing once its run has ended (both engines).

A queue retries the job of a worker that stopped sending heartbeats: killed with -9 after its
run was recorded but before the queue heard it finished, or merely too slow to answer. The
job carries its claim (connection, generation, run id). If that run ended meanwhile (it
finished, or its claim expired and a new claim interrupted it), the copy makes no upstream
request, writes no record and leaves the connection to whoever holds it now."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from coop.connectors import service, store
from coop.connectors.models import Connection, Record, SyncRun
from coop.jobs import sync as sync_jobs
from coop.types import utcnow
from tests.fakes.blog import Blog
from tests.fakes.server import LiveServer

POSTS = 3


@pytest.fixture
def blog() -> Blog:
    feed = Blog()
    now = datetime.now(UTC)
    for i in range(POSTS):
        feed.add_post(f"post {i}", body="<p>hi</p>", published=now - timedelta(days=i + 1))
    return feed


async def feed_connection(jobs: sync_jobs.Jobs, member: uuid.UUID, server: LiveServer) -> uuid.UUID:
    view = await service.create_connection(
        vault=jobs.vault,
        registry=jobs.registry,
        member_id=member,
        connector="feed",
        config={"url": server.url("/rss.xml")},
    )
    return view.id


async def runs(connection_id: uuid.UUID) -> list[str]:
    rows = await SyncRun.filter(connection_id=connection_id).order_by("started_at")
    return [r.outcome for r in rows]


async def expire_claim(connection_id: uuid.UUID) -> None:
    """What a dead process's claim looks like once its lease has run out."""
    await Connection.filter(id=connection_id).update(
        lease_until=utcnow() - timedelta(seconds=1), next_sync_at=utcnow() - timedelta(seconds=1)
    )


async def test_a_job_run_again_after_its_run_finished_changes_nothing(
    jobs: sync_jobs.Jobs, member: uuid.UUID, blog: Blog, blog_server: LiveServer
) -> None:
    connection_id = await feed_connection(jobs, member, blog_server)
    claim = await jobs.engine.claim(connection_id)
    assert (await jobs.engine.run_claimed(claim)).outcome == "ok"
    before = await Connection.get(id=connection_id)
    finished = await SyncRun.get(id=claim.run_id)
    requests = len(blog.requests)
    blog.add_post("new since", body="<p>x</p>")  # a real second sync would store it

    again = await jobs.engine.run_claimed(claim)

    assert again.outcome == "withdrawn"
    assert len(blog.requests) == requests  # no upstream request
    assert await Record.filter(connection_id=connection_id).count() == POSTS
    after = await Connection.get(id=connection_id)
    assert (after.status, after.last_sync_at, after.next_sync_at) == (
        before.status,
        before.last_sync_at,
        before.next_sync_at,
    )
    rerun = await SyncRun.get(id=claim.run_id)
    assert (rerun.outcome, rerun.finished_at) == ("ok", finished.finished_at)


async def test_a_new_claim_ends_the_expired_run_and_its_job_then_changes_nothing(
    jobs: sync_jobs.Jobs, member: uuid.UUID, blog: Blog, blog_server: LiveServer
) -> None:
    connection_id = await feed_connection(jobs, member, blog_server)
    dead = await jobs.engine.claim(connection_id)
    await expire_claim(connection_id)
    live = await jobs.engine.claim(connection_id)
    assert await runs(connection_id) == ["interrupted", "running"]

    late = await jobs.engine.run_claimed(dead)

    assert late.outcome == "withdrawn"
    assert blog.requests == []
    assert (await Connection.get(id=connection_id)).status == "syncing"  # still the live claim's
    assert (await jobs.engine.run_claimed(live)).outcome == "ok"
    assert await runs(connection_id) == ["interrupted", "ok"]
    assert await Record.filter(connection_id=connection_id).count() == POSTS


async def test_the_schedulers_batch_claim_ends_expired_runs_too(
    engine: str, jobs: sync_jobs.Jobs, member: uuid.UUID, blog_server: LiveServer
) -> None:
    if engine != "postgres":
        pytest.skip("claim_due is the PostgreSQL scheduler's statement")
    connection_id = await feed_connection(jobs, member, blog_server)
    dead = await jobs.engine.claim(connection_id)
    await expire_claim(connection_id)
    claims = await store.claim_due(now=utcnow(), limit=10, lease_seconds=600)
    assert [c.connection_id for c in claims] == [connection_id]
    assert await runs(connection_id) == ["interrupted", "running"]
    assert not await store.run_open(dead)
    assert await store.run_open(claims[0])
