"""`coop serve` alone, as the only process of a cooperative: with `--workers 2` it serves
from two web processes and runs each background job once (on SQLite one of the two holds the
data folder's jobs lock and runs them; on PostgreSQL the shared queue hands each job to one
worker); with `--no-jobs` it runs none and says at start what the operator must run instead."""

from __future__ import annotations

import asyncio
import fcntl
import os
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from coop.connectors.models import Connection, SyncRun
from coop.jobs.leader import LOCK_NAME
from tests.cluster.conftest import env_db, migrated_env, seed_feed_connection, seed_member
from tests.cluster.pg import PgCluster
from tests.cluster.processes import CoopProcess, coop, coop_env
from tests.conftest import ENGINES
from tests.fakes.blog import Blog
from tests.fakes.server import LiveServer

# Starting a cluster and several coop processes takes minutes on a loaded machine.
pytestmark = pytest.mark.timeout(400)

POSTS = 3
STARTED_HERE = "background jobs run in this process"
STARTED_ELSEWHERE = "background jobs run in another process"


@pytest.fixture(scope="module")
def blog() -> Iterator[LiveServer]:
    feed = Blog()
    now = datetime.now(UTC)
    for i in range(POSTS):
        feed.add_post(f"post {i}", body="<p>hi</p>", published=now - timedelta(days=i + 1))
    with LiveServer(feed.app()) as server:
        yield server


def sqlite_env(folder: Path) -> dict[str, str]:
    if "sqlite" not in ENGINES:
        pytest.skip("SQLite is not among COOP_TEST_ENGINES")
    url = f"sqlite://{folder / 'coop.sqlite3'}"
    env = coop_env(folder, url)
    done = coop(env, "migrate")
    assert done.returncode == 0, done.stderr
    env["COOP_TEST_DIRECT_URL"] = url
    return env


async def runs_of(env: dict[str, str], connection_id: uuid.UUID) -> tuple[str, int, list[str]]:
    """(status, records, outcome of every sync run) of one connection."""
    async with env_db(env):
        row = await Connection.get(id=connection_id)
        runs = await SyncRun.filter(connection_id=connection_id).values_list("outcome", flat=True)
    return str(row.status), int(row.records_count), [str(o) for o in runs]


async def wait_for(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.5)
    pytest.fail(f"{what}: not within {within} s")


async def synced_once(env: dict[str, str], connection_id: uuid.UUID) -> None:
    async def synced() -> bool:
        return (await runs_of(env, connection_id))[:2] == ("ok", POSTS)

    await wait_for(synced, 90, "the due connection is synced")
    await asyncio.sleep(2.0)  # time for a second run, were one to be started
    assert await runs_of(env, connection_id) == ("ok", POSTS, ["ok"])


def lock_is_free(folder: Path) -> bool:
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # also releases the lock, if this test took it
    return True


async def test_two_web_processes_on_sqlite_run_the_background_jobs_in_one_of_them(
    blog: LiveServer, tmp_path: Path
) -> None:
    env = sqlite_env(tmp_path)
    member = await seed_member(env)
    connection_id = await seed_feed_connection(env, member, blog.url("/rss.xml"))
    served = CoopProcess(env, "serve", "--workers", "2", log_path=tmp_path / "serve.log")
    try:
        served.wait_healthy()
        await synced_once(env, connection_id)

        async def both_started() -> bool:
            log = served.log()
            return STARTED_HERE in log and STARTED_ELSEWHERE in log

        await wait_for(both_started, 30, "both web processes say who runs the jobs")
        log = served.log()
        assert log.count(STARTED_HERE) == 1
        assert log.count(STARTED_ELSEWHERE) == 1
        assert not lock_is_free(tmp_path)
    finally:
        served.stop()
    assert "Traceback" not in served.log()


async def test_serve_no_jobs_on_sqlite_runs_none_and_says_who_must(
    blog: LiveServer, tmp_path: Path
) -> None:
    env = sqlite_env(tmp_path)
    member = await seed_member(env)
    connection_id = await seed_feed_connection(env, member, blog.url("/rss.xml"))
    web = CoopProcess(env, "serve", "--no-jobs", log_path=tmp_path / "web.log")
    try:
        web.wait_healthy()
        notice = [line for line in web.log().splitlines() if '"code": "no_jobs"' in line]
        assert len(notice) == 1
        assert "runs no background work" in notice[0]
        assert "run `coop serve` without --no-jobs on the same COOP_DATA_DIR" in notice[0]
        assert lock_is_free(tmp_path)  # it never took the jobs lock...
        assert await runs_of(env, connection_id) == ("ok", 0, [])  # ...nor the due sync
        # What the operator runs instead: one `coop serve` with jobs on the same folder.
        jobs = CoopProcess(env, "serve", log_path=tmp_path / "jobs.log")
        try:
            jobs.wait_healthy()
            await synced_once(env, connection_id)
        finally:
            jobs.stop()
    finally:
        web.stop()
    assert "Traceback" not in web.log() + jobs.log()


async def test_two_web_processes_on_postgres_run_each_job_once(
    cluster: PgCluster, blog: LiveServer, tmp_path: Path
) -> None:
    env = migrated_env(cluster, tmp_path, COOP_RATE_LIMIT="0")
    members = [await seed_member(env) for _ in range(3)]
    connections = [
        await seed_feed_connection(env, m, blog.url(f"/rss.xml?{secrets.token_hex(2)}"))
        for m in members
    ]
    served = CoopProcess(env, "serve", "--workers", "2", log_path=tmp_path / "serve.log")
    try:
        served.wait_healthy()
        for connection_id in connections:
            await synced_once(env, connection_id)
    finally:
        served.stop()
    assert "Traceback" not in served.log()
