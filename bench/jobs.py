"""Job throughput per `coop worker` on PostgreSQL (issue 15): syncs per second and members
scored per second, with one worker and with two, measured in one run on the same members.

A scratch database (on `COOP_BENCH_POSTGRES_URL`, default the test server) gets `--members`
members, each with one feed connection to a small feed on loopback (`--posts` posts).

- Syncs: for each worker count, every connection is made due at once; the workers' scheduler
  claims them and the workers run the syncs. Throughput = syncs / (last run's end - first
  run's start), from the sync runs' own timestamps (so the 15 s scheduler tick does not
  count).
- Scoring: then every member enables both reference scorers, and for each worker count one
  `coop.score` job per member is queued at once (their scores deleted first, so each run
  stores them anew). The workers score through the real sandbox: bubblewrap's reduced view,
  network namespace, private scratch and uid drop, required (`COOP_SCORER_REQUIRE_ISOLATION=1`:
  a worker without them refuses to score and the bench fails). A warm-up batch first starts
  every worker's sandbox template. Throughput = members / (last job's end - first job's
  start), from the queue's own job events.

It prints what a million members at the default interval (6 h: every member synced, then
scored, once per interval) need in workers at the measured rates.

Usage: python bench/jobs.py [--members 200] [--posts 20] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(ROOT / "bench") not in sys.path:
    sys.path.insert(0, str(ROOT / "bench"))

import asyncpg  # noqa: E402
from scoring import scorer_objects  # noqa: E402
from tortoise.context import TortoiseContext  # noqa: E402

from coop.config import Settings  # noqa: E402
from coop.connectors import service  # noqa: E402
from coop.connectors.registry import Registry  # noqa: E402
from coop.db import tortoise_config  # noqa: E402
from coop.jobs import pgqueue  # noqa: E402
from coop.members import service as members  # noqa: E402
from coop.scoring import service as scoring  # noqa: E402
from coop.scoring.runner import InProcessRunner  # noqa: E402
from coop.vault import Vault, load_keyring, load_secret_key  # noqa: E402
from tests.cluster.processes import CoopProcess, coop, coop_env  # noqa: E402
from tests.fakes.blog import Blog  # noqa: E402
from tests.fakes.server import LiveServer  # noqa: E402

ADMIN = os.environ.get("COOP_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
INTERVAL = 6 * 60 * 60  # COOP_SYNC_INTERVAL_SECONDS' default
SCORERS = ("reach", "cadence")


async def seed(env: dict[str, str], count: int, feed_url: str) -> list[uuid.UUID]:
    settings = Settings.from_env(env)
    vault = Vault(load_keyring(settings), load_secret_key(settings))
    registry = Registry.load(settings.connector_env(), allowed=settings.plugins)
    made = []
    async with TortoiseContext() as ctx:
        await ctx.init(config=tortoise_config(settings))
        for i in range(count):
            member = await members.create_member(
                vault=vault, email=f"j{i}-{secrets.token_hex(3)}@example.org", password="x" * 12
            )
            await service.create_connection(
                vault=vault,
                registry=registry,
                member_id=member.id,
                connector="feed",
                config={"url": feed_url},
            )
            made.append(member.id)
    return made


async def enable_scorers(env: dict[str, str], member_ids: list[uuid.UUID]) -> None:
    """Every member enables both reference scorers (the metadata the sandbox will load)."""
    settings = Settings.from_env(env)
    runner = InProcessRunner()
    for scorer in scorer_objects().values():
        runner.add(scorer)
    async with TortoiseContext() as ctx:
        await ctx.init(config=tortoise_config(settings))
        for member_id in member_ids:
            for name in SCORERS:
                await scoring.enable_scorer(member_id=member_id, meta=runner.meta(name))


def _proc_stat(pid: str) -> tuple[int, int] | None:
    """(parent pid, CPU ticks of the process and of its reaped children), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), sum(int(f) for f in fields[11:15])  # utime stime cutime cstime


def tree_cpu(roots: list[CoopProcess]) -> float:
    """CPU seconds used so far by the worker processes and everything under them (the
    sandbox's template and its per-member children, counted in their parents once reaped)."""
    stats = {pid: _proc_stat(pid) for pid in os.listdir("/proc") if pid.isdigit()}
    children: dict[int, list[int]] = {}
    for pid, stat in stats.items():
        if stat is not None:
            children.setdefault(stat[0], []).append(int(pid))
    todo, ticks = [p.process.pid for p in roots], 0
    while todo:
        pid = todo.pop()
        stat = stats.get(str(pid))
        ticks += stat[1] if stat else 0
        todo.extend(children.get(pid, []))
    return ticks / os.sysconf("SC_CLK_TCK")


def start_workers(env: dict[str, str], workers: int, folder: Path, tag: str) -> list[CoopProcess]:
    logs = [folder / f"{tag}{workers}-{i}.log" for i in range(workers)]
    return [CoopProcess(env, "worker", "--concurrency", "4", log_path=log) for log in logs]


async def run_syncs(
    conn: asyncpg.Connection, env: dict[str, str], workers: int, count: int, folder: Path
) -> tuple[float, float]:
    """(syncs per second, worker CPU seconds per sync)."""
    await conn.execute("DELETE FROM sync_run")
    started = await conn.fetchval("SELECT now()")
    processes = start_workers(env, workers, folder, "sync")
    try:
        await asyncio.sleep(3)  # workers up
        cpu = tree_cpu(processes)
        await conn.execute(
            "UPDATE connection SET next_sync_at = now(), status = 'ok', lease_until = NULL"
        )
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            done = await conn.fetchval(
                "SELECT count(*) FROM sync_run WHERE finished_at IS NOT NULL AND started_at > $1",
                started,
            )
            if done >= count:
                break
            await asyncio.sleep(0.5)
        cpu = tree_cpu(processes) - cpu
        first, last = await conn.fetchrow(
            "SELECT min(started_at), max(finished_at) FROM sync_run WHERE started_at > $1", started
        )
    finally:
        for process in processes:
            process.stop()
    await conn.execute("UPDATE connection SET next_sync_at = now() + interval '1 day'")
    return count / max((last - first).total_seconds(), 1e-3), cpu / count


# The workers delete succeeded jobs with their events: the bench keeps its own record of
# when each job started (its status event) and ended (deleted, or failed).
KEEP_EVENTS = """
CREATE TABLE bench_job_event (job_id bigint, type text, at timestamptz);
CREATE FUNCTION bench_keep_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bench_job_event VALUES (NEW.job_id, NEW.type::text, clock_timestamp());
    RETURN NEW;
END $$;
CREATE TRIGGER bench_keep_event AFTER INSERT ON procrastinate_events
    FOR EACH ROW EXECUTE FUNCTION bench_keep_event();
CREATE FUNCTION bench_keep_deletion() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bench_job_event VALUES (OLD.id, 'deleted', clock_timestamp());
    RETURN OLD;
END $$;
CREATE TRIGGER bench_keep_deletion BEFORE DELETE ON procrastinate_jobs
    FOR EACH ROW EXECUTE FUNCTION bench_keep_deletion();
"""


async def score_batch(
    conn: asyncpg.Connection, env: dict[str, str], member_ids: list[uuid.UUID]
) -> tuple[int, float]:
    """Queue one `coop.score` job per member at once and wait for all of them: (jobs not
    done, i.e. failed, seconds from the first job's start to the last job's end)."""
    await conn.execute("DELETE FROM score")
    app = pgqueue.build(Settings.from_env(env))
    async with app.open_async():
        ids = await app.tasks["coop.score"].batch_defer_async(
            *({"member_id": str(m)} for m in member_ids)
        )
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        waiting = await conn.fetchval(
            "SELECT count(*) FROM procrastinate_jobs WHERE id = ANY($1) "
            "AND status IN ('todo', 'doing')",
            ids,
        )
        if not waiting:
            break
        await asyncio.sleep(0.5)
    failed, first, last = await conn.fetchrow(
        """SELECT (SELECT count(*) FROM procrastinate_jobs WHERE id = ANY($1)),
                  min(at) FILTER (WHERE type = 'started'),
                  max(at) FILTER (WHERE type IN ('deleted', 'succeeded', 'failed'))
           FROM bench_job_event WHERE job_id = ANY($1)""",
        ids,
    )
    return failed, (last - first).total_seconds()


async def run_scoring(
    conn: asyncpg.Connection,
    env: dict[str, str],
    workers: int,
    member_ids: list[uuid.UUID],
    folder: Path,
) -> tuple[float, float]:
    """(members scored per second, worker CPU seconds per member, sandbox included)."""
    processes = start_workers(env, workers, folder, "score")
    try:
        await asyncio.sleep(3)  # workers up
        # Warm-up: enough jobs for every worker to start its sandbox template.
        await score_batch(conn, env, member_ids[: 8 * workers])
        cpu = tree_cpu(processes)
        failed, took = await score_batch(conn, env, member_ids)
        cpu = tree_cpu(processes) - cpu
        stored = await conn.fetchval("SELECT count(DISTINCT member_id) FROM score")
    finally:
        for process in processes:
            process.stop()
    if failed or stored != len(member_ids):
        logs = "\n".join(p.log()[-2000:] for p in processes)
        raise RuntimeError(f"{failed} jobs failed, {stored} members scored:\n{logs}")
    return len(member_ids) / max(took, 1e-3), cpu / len(member_ids)


async def main(count: int, posts: int, worker_counts: list[int]) -> None:
    name = f"coop_jobs_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = "postgres://" + ADMIN.split("://", 1)[1].rsplit("/", 1)[0] + f"/{name}"
    folder = Path(tempfile.mkdtemp(prefix="coop-bench-jobs-"))
    feed = Blog()
    now = datetime.now(UTC)
    for i in range(posts):
        feed.add_post(f"post {i}", body="<p>hello</p>", published=now - timedelta(hours=i + 1))
    syncs: dict[int, tuple[float, float]] = {}
    scored: dict[int, tuple[float, float]] = {}
    try:
        with LiveServer(feed.app()) as server:
            env = coop_env(
                folder,
                url,
                COOP_DEV="1",
                COOP_SYNC_INTERVAL_SECONDS="86400",
                COOP_SCORER_REQUIRE_ISOLATION="1",
            )
            done = coop(env, "migrate")
            assert done.returncode == 0, done.stderr
            member_ids = await seed(env, count, server.url("/rss.xml"))
            conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
            for workers in worker_counts:
                syncs[workers] = rate, cpu = await run_syncs(conn, env, workers, count, folder)
                print(
                    f"{workers} worker(s): {rate:.1f} syncs/s, {cpu * 1e3:.0f} ms worker CPU "
                    f"per sync (load average {os.getloadavg()[0]:.1f})",
                    flush=True,
                )
            await conn.execute(
                "DELETE FROM procrastinate_jobs WHERE status = 'todo' AND task_name = 'coop.score'"
            )
            await enable_scorers(env, member_ids)
            await conn.execute(KEEP_EVENTS)
            records = await conn.fetchval("SELECT count(*) FROM connector_record") / count
            for workers in worker_counts:
                scored[workers] = rate, cpu = await run_scoring(
                    conn, env, workers, member_ids, folder
                )
                print(
                    f"{workers} worker(s): {rate:.1f} members scored/s ({len(SCORERS)} scorers, "
                    f"{records:.0f} records each, sandboxed), {cpu * 1e3:.0f} ms worker CPU per "
                    f"member (load average {os.getloadavg()[0]:.1f})",
                    flush=True,
                )
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    summary(syncs, scored)


def summary(syncs: dict[int, tuple[float, float]], scored: dict[int, tuple[float, float]]) -> None:
    first = next(iter(syncs))
    for workers in syncs:
        print(
            f"{workers} worker(s): syncs x{syncs[workers][0] / syncs[first][0]:.2f}, "
            f"scoring x{scored[workers][0] / scored[first][0]:.2f} of {first}"
        )
    needed = 1_000_000 / INTERVAL
    sync_rate, score_rate = syncs[first][0] / first, scored[first][0] / first
    print(
        f"1M members every {INTERVAL // 3600} h: {needed:.0f} syncs/s and {needed:.0f} members "
        f"scored/s; at one worker's rates here that is {needed / sync_rate:.1f} workers "
        f"for the syncs + {needed / score_rate:.1f} for the scoring"
    )
    # CPU, not wall time, is what a worker needs of a core (the rates above share 2 busy cores).
    sync_cpu = min(cpu for _, cpu in syncs.values())
    score_cpu = min(cpu for _, cpu in scored.values())
    print(
        f"in worker CPU: {sync_cpu * 1e3:.0f} ms per sync + {score_cpu * 1e3:.0f} ms per member "
        f"scored = {needed * (sync_cpu + score_cpu):.1f} cores busy for 1M members every "
        f"{INTERVAL // 3600} h (PostgreSQL and the sources not counted)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--posts", type=int, default=20)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    asyncio.run(main(args.members, args.posts, args.workers))
