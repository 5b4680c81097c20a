"""The embedded default after a crash: a `coop serve` on SQLite killed with -9 in the middle
of a sync (and with a score queued) leaves the connection `syncing` and the score `queued`
with no process left to finish them. The next `coop serve` on the data folder, finding no
other process alive, hands them back at start: the connection syncs again at once (not
after the 10-minute claim lease) and the score says it was interrupted (Recompute)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from coop.scoring.models import ScorerConsent
from coop.types import utcnow
from tests.cluster.conftest import env_db, seed_feed_connection, seed_member
from tests.cluster.processes import CoopProcess
from tests.cluster.test_serve import POSTS, runs_of, sqlite_env, wait_for
from tests.fakes.blog import Blog
from tests.fakes.server import LiveServer

pytestmark = pytest.mark.timeout(400)


@pytest.fixture
def blog() -> Iterator[tuple[LiveServer, Blog]]:
    feed = Blog()
    now = datetime.now(UTC)
    for i in range(POSTS):
        feed.add_post(f"post {i}", body="<p>hi</p>", published=now - timedelta(days=i + 1))
    with LiveServer(feed.app()) as server:
        yield server, feed


async def queue_a_score(env: dict[str, str], member_id: uuid.UUID) -> None:
    """What Enable leaves while its run waits in the process's queue."""
    async with env_db(env):
        await ScorerConsent.create(
            id=uuid.uuid4(),
            member_id=member_id,
            scorer="reach",
            enabled=True,
            updated_at=utcnow(),
            last_status="queued",
        )


def released_line(log: str) -> dict[str, object]:
    lines = [json.loads(x) for x in log.splitlines() if '"code": "runs_interrupted"' in x]
    assert len(lines) == 1, log
    found: dict[str, object] = lines[0]
    return found


async def test_serve_killed_mid_sync_on_sqlite_leaves_nothing_stuck_after_restart(
    blog: tuple[LiveServer, Blog], tmp_path: Path
) -> None:
    server, feed = blog
    feed.delay = 60.0  # /slow.xml holds the first process inside the run
    env = sqlite_env(tmp_path)
    member = await seed_member(env)
    connection_id = await seed_feed_connection(env, member, server.url("/slow.xml"))
    first = CoopProcess(env, "serve", log_path=tmp_path / "first.log")
    try:
        first.wait_healthy()

        async def claimed() -> bool:
            return (await runs_of(env, connection_id))[0] == "syncing"

        await wait_for(claimed, 60, "the scheduler claims the due connection")
        await queue_a_score(env, member.member_id)  # as Enable leaves it, in this process
    finally:
        first.kill()  # SIGKILL: no clean-up of any kind
    assert await runs_of(env, connection_id) == ("syncing", 0, ["running"])
    feed.delay = 0.0

    second = CoopProcess(env, "serve", log_path=tmp_path / "second.log")
    try:
        second.wait_healthy()
        line = released_line(second.log())
        assert (line["connections"], line["scorers"]) == (1, 1)

        async def synced_again() -> bool:
            return (await runs_of(env, connection_id))[:2] == ("ok", POSTS)

        await wait_for(synced_again, 90, "the released connection syncs again")
        assert (await runs_of(env, connection_id))[2] == ["interrupted", "ok"]

        async def score_not_stuck() -> bool:
            async with env_db(env):
                row = await ScorerConsent.get(member_id=member.member_id, scorer="reach")
            return row.last_status not in ("queued", "")

        await wait_for(score_not_stuck, 60, "the queued score is no longer queued")
    finally:
        second.stop()
    assert "Traceback" not in second.log()


async def test_a_process_starting_beside_a_live_one_releases_nothing(
    blog: tuple[LiveServer, Blog], tmp_path: Path
) -> None:
    """Another process alive on the folder may own the runs it finds: they are left alone."""
    server, feed = blog
    feed.delay = 60.0
    env = sqlite_env(tmp_path)
    member = await seed_member(env)
    connection_id = await seed_feed_connection(env, member, server.url("/slow.xml"))
    first = CoopProcess(env, "serve", log_path=tmp_path / "first.log")
    second: CoopProcess | None = None
    try:
        first.wait_healthy()

        async def claimed() -> bool:
            return (await runs_of(env, connection_id))[0] == "syncing"

        await wait_for(claimed, 60, "the scheduler claims the due connection")
        second = CoopProcess(env, "serve", log_path=tmp_path / "second.log")
        second.wait_healthy()
        await asyncio.sleep(1.0)
        assert '"code": "runs_interrupted"' not in second.log()
        assert await runs_of(env, connection_id) == ("syncing", 0, ["running"])
    finally:
        first.kill()
        if second is not None:
            second.stop()


# A CLI command on the data folder (what `coop dev` does while it syncs its sample member):
# it claims a run through the CLI's database entry point, then waits for a line on stdin.
CLI_HOLDING_A_CLAIM = """
import asyncio, sys, uuid
from coop.cli import with_db
from coop.config import Settings
from coop.connectors import store

async def work():
    claim = await store.claim(connection_id=uuid.UUID(sys.argv[1]), lease_seconds=600)
    print("claimed", claim.run_id, flush=True)
    await asyncio.to_thread(sys.stdin.readline)

asyncio.run(with_db(Settings.from_env(), work))
"""


def cli_holding_a_claim(env: dict[str, str], connection_id: uuid.UUID) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CLI_HOLDING_A_CLAIM, str(connection_id)],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


async def test_a_serve_starting_beside_a_cli_command_releases_nothing_it_claimed(
    blog: tuple[LiveServer, Blog], tmp_path: Path
) -> None:
    server, _ = blog
    env = sqlite_env(tmp_path)
    member = await seed_member(env)
    connection_id = await seed_feed_connection(env, member, server.url("/rss.xml"))
    serve: CoopProcess | None = None
    with cli_holding_a_claim(env, connection_id) as cli:
        try:
            assert cli.stdout is not None and cli.stdin is not None
            line = await asyncio.to_thread(cli.stdout.readline)  # marker: the claim is held
            assert line.startswith("claimed"), line
            serve = CoopProcess(env, "serve", log_path=tmp_path / "serve.log")
            serve.wait_healthy()  # its start-up (and any release of runs) is over
            assert '"code": "runs_interrupted"' not in serve.log()
            assert await runs_of(env, connection_id) == ("syncing", 0, ["running"])
            cli.stdin.write("done\n")
            cli.stdin.flush()
            assert await asyncio.to_thread(cli.wait, 60) == 0
        finally:
            if cli.poll() is None:
                cli.kill()
            if serve is not None:
                serve.stop()
