"""Sync throughput per `coop worker` on PostgreSQL (issue 15): syncs per second with one worker
and with two, measured in one run against the same connections.

A scratch database (on `COOP_BENCH_POSTGRES_URL`, default the test server) gets `--members`
members, each with one feed connection to a small feed on loopback (20 posts). For each worker
count, every connection is made due at once; the workers' scheduler claims them and the
workers run the syncs. Throughput = syncs / (last run's end - first run's start), from the
sync runs' own timestamps (so the 15 s scheduler tick does not count).

Usage: python bench/jobs.py [--members 200] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
from tortoise.context import TortoiseContext  # noqa: E402

from coop.config import Settings  # noqa: E402
from coop.connectors import service  # noqa: E402
from coop.connectors.registry import Registry  # noqa: E402
from coop.db import tortoise_config  # noqa: E402
from coop.members import service as members  # noqa: E402
from coop.vault import Vault, load_keyring, load_secret_key  # noqa: E402
from tests.cluster.processes import CoopProcess, coop, coop_env  # noqa: E402
from tests.fakes.blog import Blog  # noqa: E402
from tests.fakes.server import LiveServer  # noqa: E402

ADMIN = os.environ.get("COOP_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


async def seed(env: dict[str, str], count: int, feed_url: str) -> None:
    settings = Settings.from_env(env)
    vault = Vault(load_keyring(settings), load_secret_key(settings))
    registry = Registry.load(settings.connector_env(), allowed=settings.plugins)
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


async def run_once(
    conn: asyncpg.Connection, env: dict[str, str], workers: int, count: int, folder: Path
) -> float:
    await conn.execute("DELETE FROM sync_run")
    started = await conn.fetchval("SELECT now()")
    processes = [
        CoopProcess(env, "worker", "--concurrency", "4", log_path=folder / f"w{workers}-{i}.log")
        for i in range(workers)
    ]
    try:
        await asyncio.sleep(3)  # workers up
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
        first, last = await conn.fetchrow(
            "SELECT min(started_at), max(finished_at) FROM sync_run WHERE started_at > $1", started
        )
    finally:
        for process in processes:
            process.stop()
    await conn.execute("UPDATE connection SET next_sync_at = now() + interval '1 day'")
    return count / max((last - first).total_seconds(), 1e-3)


async def main(count: int, worker_counts: list[int]) -> None:
    name = f"coop_jobs_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = "postgres://" + ADMIN.split("://", 1)[1].rsplit("/", 1)[0] + f"/{name}"
    folder = Path(tempfile.mkdtemp(prefix="coop-bench-jobs-"))
    feed = Blog()
    now = datetime.now(UTC)
    for i in range(20):
        feed.add_post(f"post {i}", body="<p>hello</p>", published=now - timedelta(hours=i + 1))
    try:
        with LiveServer(feed.app()) as server:
            env = coop_env(folder, url, COOP_DEV="1", COOP_SYNC_INTERVAL_SECONDS="86400")
            done = coop(env, "migrate")
            assert done.returncode == 0, done.stderr
            await seed(env, count, server.url("/rss.xml"))
            conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
            rates = {}
            for workers in worker_counts:
                rates[workers] = await run_once(conn, env, workers, count, folder)
                print(f"{workers} worker(s): {rates[workers]:.1f} syncs/s", flush=True)
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    base = rates[worker_counts[0]]
    for workers, rate in rates.items():
        print(f"{workers} worker(s): x{rate / base:.2f} of {worker_counts[0]}")
    needed = 1_000_000 / 21_600
    print(
        f"1M connections every 6 h need {needed:.0f} syncs/s: "
        f"about {needed / base * worker_counts[0]:.0f} workers at the first rate"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    asyncio.run(main(args.members, args.workers))
