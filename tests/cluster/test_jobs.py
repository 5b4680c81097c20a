"""Background jobs on PostgreSQL through the shared queue, across real processes: web
processes that run no jobs (`coop serve --no-jobs`), and `coop worker` processes that do.
Workers killed with -9 in the middle of a job: tests/cluster/test_crash.py."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from tests.cluster.conftest import migrated_env, seed_feed_connection, seed_member
from tests.cluster.pg import PgCluster
from tests.cluster.processes import CoopProcess
from tests.fakes.blog import Blog
from tests.fakes.server import LiveServer

POSTS = 5


@pytest.fixture(scope="module")
def blog() -> Iterator[tuple[LiveServer, Blog]]:
    feed = Blog()
    now = datetime.now(UTC)
    for i in range(POSTS):
        feed.add_post(f"post {i}", body="<p>hello</p>", published=now - timedelta(days=i + 1))
    with LiveServer(feed.app()) as server:
        yield server, feed


@pytest.fixture(scope="module")
def env(cluster: PgCluster, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return migrated_env(cluster, tmp_path_factory.mktemp("jobs"), COOP_DEV="1")


@pytest.fixture(scope="module")
def web(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[CoopProcess]:
    folder: Path = tmp_path_factory.mktemp("web")
    process = CoopProcess(env, "serve", "--no-jobs", log_path=folder / "serve.log")
    try:
        process.wait_healthy()
        yield process
    finally:
        process.stop()


async def fetch(env: dict[str, str], sql: str, *args: object) -> list[asyncpg.Record]:
    url = env["COOP_TEST_DIRECT_URL"].replace("postgres://", "postgresql://", 1)
    conn = await asyncpg.connect(url)
    try:
        rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
        return rows
    finally:
        await conn.close()


async def wait_for(check: object, within: float, what: str) -> None:
    assert callable(check)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.5)
    pytest.fail(f"{what}: not within {within} s")


async def connection_state(env: dict[str, str], connection_id: uuid.UUID) -> tuple[str, int, int]:
    """(status, records, sync runs still marked running) of one connection."""
    row = (await fetch(env, 'SELECT status FROM "connection" WHERE id = $1', connection_id))[0]
    records = await fetch(
        env, "SELECT count(*) AS n FROM connector_record WHERE connection_id = $1", connection_id
    )
    running = await fetch(
        env,
        "SELECT count(*) AS n FROM sync_run WHERE connection_id = $1 AND finished_at IS NULL",
        connection_id,
    )
    return str(row["status"]), int(records[0]["n"]), int(running[0]["n"])


async def test_a_web_process_without_jobs_leaves_the_sync_to_a_worker(
    env: dict[str, str], web: CoopProcess, blog: tuple[LiveServer, Blog], tmp_path: Path
) -> None:
    server, _ = blog
    member = await seed_member(env)
    connection_id = await seed_feed_connection(env, member, server.url("/rss.xml"))
    # --no-jobs: the web process registered no queue worker, and took nothing.
    assert await fetch(env, "SELECT id FROM procrastinate_workers") == []
    assert (await connection_state(env, connection_id))[1] == 0
    worker = CoopProcess(env, "worker", "--concurrency", "2", log_path=tmp_path / "worker.log")
    try:

        async def synced() -> bool:
            return await connection_state(env, connection_id) == ("ok", POSTS, 0)

        await wait_for(synced, 60, "the worker syncs the due connection")
    finally:
        worker.stop()
    assert "Traceback" not in worker.log()
