"""kill -9 of a `coop worker` in the middle of a job on PostgreSQL (issue 15): nothing stays
stuck and nothing is done twice. Real processes on a cluster of the test's own: a web
process that runs no jobs (`coop serve --no-jobs`) and `coop worker`s.

The tests know the first worker is inside its job from a marker, never from a sleep: the
upstream request of a sync reaching a feed that holds it (/gated.xml), or the scoring job
taken ("doing") while its scorer cannot return (the first worker's copy of the `tally` scorer
sleeps for an hour; the second worker's copy, same name and version, counts at once). Then
the worker gets SIGKILL, a second one starts, and the member's pages say what happened.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.cluster.conftest import Seeded, migrated_env, seed_feed_connection, seed_member
from tests.cluster.pg import PgCluster
from tests.cluster.processes import CoopProcess
from tests.cluster.test_jobs import connection_state, fetch, wait_for
from tests.cluster.test_story import post_form
from tests.fakes.blog import Blog
from tests.fakes.server import LiveServer
from tests.scoring.test_upgrade import pip_install

pytestmark = pytest.mark.timeout(600)

POSTS = 4

TALLY = """
import time

from coop.scoring.spec import API_VERSION, ScoreResult


class TallyScorer:
    api_version = API_VERSION
    name = "tally"
    version = "1.0.0"
    title = "Tally"
    description = "Counts your posts (a test scorer)."
    reads = ("post",)
    fields = {"post": ("occurred_at",)}
    range = (0.0, 1000.0)
    needs_text = False
    homepage = ""

    def score(self, records, now):
        time.sleep(SLEEP)
        return ScoreResult(value=float(len(records)), reasons=[f"{len(records)} posts"])
"""
PYPROJECT = """
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "coop-score-tally"
version = "1.0.0"
requires-python = ">=3.11"

[project.entry-points."coop.scorers"]
tally = "coop_score_tally:TallyScorer"

[tool.setuptools.packages.find]
where = ["src"]
"""


@dataclass
class Sites:
    stuck: Path  # its tally sleeps for an hour
    fine: Path  # its tally answers at once


def tally_site(root: Path, sleep: int) -> Path:
    src = root / "src-tally"
    package = src / "src" / "coop_score_tally"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(TALLY.replace("SLEEP", str(sleep)))
    (src / "pyproject.toml").write_text(PYPROJECT)
    site = root / "site"
    pip_install(src, site)
    return site


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Sites:
    return Sites(
        stuck=tally_site(tmp_path_factory.mktemp("stuck"), 3600),
        fine=tally_site(tmp_path_factory.mktemp("fine"), 0),
    )


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
    return migrated_env(cluster, tmp_path_factory.mktemp("crash"), COOP_DEV="1")


@pytest.fixture(scope="module")
def web(
    env: dict[str, str], sites: Sites, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CoopProcess]:
    folder: Path = tmp_path_factory.mktemp("web")
    process = CoopProcess(
        {**env, "COOP_PLUGIN_PATH": str(sites.fine)},
        "serve",
        "--no-jobs",
        log_path=folder / "serve.log",
    )
    try:
        process.wait_healthy()
        yield process
    finally:
        process.stop()
    assert "Traceback" not in process.log()


def worker(env: dict[str, str], site: Path, log: Path, **extra: str) -> CoopProcess:
    return CoopProcess({**env, "COOP_PLUGIN_PATH": str(site), **extra}, "worker", log_path=log)


@asynccontextmanager
async def browser(member: Seeded) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=60, follow_redirects=True) as http:
        http.cookies.set("coop_session", member.session_token)
        yield http


async def sync_now(http: httpx.AsyncClient, web: CoopProcess, connection_id: uuid.UUID) -> str:
    """Press "Sync now" on the connection's page; the message the page then shows."""
    page = f"/connections/{connection_id}"
    answer = await post_form(http, web, f"{page}/sync", {}, page)
    assert answer.status_code == 200
    for message in ("A sync is already running.", "Sync started."):
        if message in answer.text:
            return message
    raise AssertionError(answer.text)


async def run_outcomes(env: dict[str, str], connection_id: uuid.UUID) -> list[str]:
    rows = await fetch(
        env,
        "SELECT outcome FROM sync_run WHERE connection_id = $1 ORDER BY started_at",
        connection_id,
    )
    return [str(r["outcome"]) for r in rows]


async def member_jobs(env: dict[str, str], member: Seeded) -> list[tuple[str, str]]:
    """(task, status) of every job of the member still in the queue (successful ones are
    deleted as they finish)."""
    rows = await fetch(
        env,
        "SELECT task_name, status::text AS status FROM procrastinate_jobs "
        "WHERE args->>'member_id' = $1 ORDER BY id",
        str(member.member_id),
    )
    return [(str(r["task_name"]), str(r["status"])) for r in rows]


async def tally_status(env: dict[str, str], member: Seeded) -> str:
    rows = await fetch(
        env,
        "SELECT last_status FROM scorer_consent WHERE member_id = $1 AND scorer = 'tally'",
        member.member_id,
    )
    return str(rows[0]["last_status"]) if rows else ""


async def test_a_worker_killed_mid_sync_leaves_no_sync_stuck_and_nothing_done_twice(
    env: dict[str, str],
    web: CoopProcess,
    sites: Sites,
    blog: tuple[LiveServer, Blog],
    tmp_path: Path,
) -> None:
    server, feed = blog
    member = await seed_member(env)
    connection_id = await seed_feed_connection(env, member, server.url("/gated.xml"))
    first = worker(env, sites.fine, tmp_path / "first.log")
    try:

        async def inside_the_run() -> bool:
            return any(path == "/gated.xml" for path, _ in feed.requests)

        await wait_for(inside_the_run, 120, "the first worker's run reaches the upstream")
    finally:
        first.kill()  # SIGKILL: no clean-up of any kind
    assert await connection_state(env, connection_id) == ("syncing", 0, 1)

    async with browser(member) as http:
        # The run is unfinished, so the claim holds: for now, and only for now.
        assert await sync_now(http, web, connection_id) == "A sync is already running."
        feed.gate.set()
        second = worker(env, sites.fine, tmp_path / "second.log")
        try:

            async def finished() -> bool:
                return await connection_state(env, connection_id) == ("ok", POSTS, 0)

            await wait_for(finished, 150, "the second worker finishes the killed run")
            assert await run_outcomes(env, connection_id) == ["ok"]  # that run, not a new one
            assert await sync_now(http, web, connection_id) == "Sync started."

            async def synced_again() -> bool:  # and its rescore job done
                runs = await run_outcomes(env, connection_id)
                return runs == ["ok", "ok"] and await member_jobs(env, member) == []

            await wait_for(synced_again, 60, "the next sync runs")
        finally:
            second.stop()
    assert await connection_state(env, connection_id) == ("ok", POSTS, 0)  # nothing twice
    assert await member_jobs(env, member) == []  # no job left waiting, running or failed
    assert "retrying a stalled job" in second.log()
    assert "Traceback" not in second.log()


async def test_a_worker_killed_mid_scoring_leaves_no_score_queued_and_scores_once(
    env: dict[str, str],
    web: CoopProcess,
    sites: Sites,
    blog: tuple[LiveServer, Blog],
    tmp_path: Path,
) -> None:
    server, _ = blog
    member = await seed_member(env)
    connection_id = await seed_feed_connection(env, member, server.url("/rss.xml"))
    first = worker(env, sites.stuck, tmp_path / "first.log", COOP_SCORER_TIMEOUT="3000")
    try:

        async def synced_and_idle() -> bool:
            state = await connection_state(env, connection_id)
            return state == ("ok", POSTS, 0) and await member_jobs(env, member) == []

        await wait_for(synced_and_idle, 120, "the first worker syncs (no scorer enabled yet)")
        async with browser(member) as http:
            enabled = await post_form(http, web, "/scorers/tally/enable", {}, "/scorers")
            assert "Your score is being computed" in enabled.text

        async def inside_the_job() -> bool:
            taken = await member_jobs(env, member) == [("coop.score", "doing")]
            return taken and await tally_status(env, member) == "queued"

        await wait_for(inside_the_job, 120, "the first worker takes the scoring job")
    finally:
        first.kill()  # SIGKILL while its tally sleeps: the job cannot have finished
    assert await member_jobs(env, member) == [("coop.score", "doing")]
    async with browser(member) as http:
        page = await http.get(web.base_url + "/scores/tally")
        assert "Your Tally score is being computed" in page.text

        second = worker(env, sites.fine, tmp_path / "second.log")
        try:

            async def scored() -> bool:
                return await tally_status(env, member) not in ("queued", "")

            await wait_for(scored, 150, "the second worker scores the member")
        finally:
            second.stop()
        page = await http.get(web.base_url + "/scores/tally")
        assert "being computed" not in page.text
    assert await tally_status(env, member) == "stored"
    scores = await fetch(
        env,
        "SELECT value FROM score WHERE member_id = $1 AND scorer = 'tally'",
        member.member_id,
    )
    assert [float(r["value"]) for r in scores] == [float(POSTS)]
    runs = await fetch(
        env, "SELECT sum(runs) AS n FROM scorer_run_counts WHERE scorer = 'tally' AND kind = ''"
    )
    assert runs[0]["n"] == 1  # the killed run never finished; the retried job ran once
    assert await member_jobs(env, member) == []  # not left "doing", not failed
    assert "retrying a stalled job" in second.log()
    assert "Traceback" not in second.log()
