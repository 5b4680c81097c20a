"""Per-member operations against the number of OTHER members, on PostgreSQL (issue 15).

For each size (default 1,000, 100,000 and 1,000,000 members) a scratch database gets coop's
schema from its migrations (`coop migrate`) and is filled server-side (`FILL`: one
`INSERT … SELECT … FROM generate_series` per table) with members shaped like real ones:
a key, two sessions (one expired), a grant to one of five apps with its event, a used code,
two tokens (one rotated), a personal token, a used export link, five access-log rows, a feed
connection with one sync run and five records, two enabled scorers with their consent
events and a score each. Indexes and constraints are dropped for the fill and re-created
exactly as the migrations defined them (definitions read back from the catalog, foreign keys
validated), then VACUUM ANALYZE: the planner sees the statistics of a settled database.

Then members are made through coop's services (100 posts, both reference scorers scored
in-process, a grant with a token, a personal token) and for each the bench measures, in this
process, p50 wall time and this process's CPU time of:

- read: the authorized score read (`consent.resolve_bearer`: token, grant, app and current
  scores in one statement; then `consent.authorize_read`: the access-log row, committed),
- login: a new web session (`sessions.start`, which first purges the member's dead sessions),
- export: the member's whole export ZIP, streamed (`portability.export.stream_export`),
- revoke: revoking the member's grant (its tokens and codes with it),
- erase: `erase_member`, split into "key" (the transaction that destroys the key) and the purge.

The sizes are measured in alternating slices (all databases stay filled; each round measures
a few members on every size, in turns), so load from other work on a shared machine hits every
size alike. It prints the ratio of each size to the smallest (flat = close to 1; target
<= 1.2). Needs a PostgreSQL server where it may create and drop databases
(`COOP_BENCH_POSTGRES_URL`, default the test server); the databases are dropped at the end.

Usage: python bench/scale.py [--sizes 1000 100000 1000000] [--members 15] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(ROOT / "bench") not in sys.path:
    sys.path.insert(0, str(ROOT / "bench"))

import asyncpg  # noqa: E402
from _portability_setup import add_posts  # noqa: E402
from _scale_fill import APPS, fill  # noqa: E402
from scoring import scorer_objects  # noqa: E402
from tortoise.context import TortoiseContext  # noqa: E402

from coop.apps import service as apps  # noqa: E402
from coop.config import Settings  # noqa: E402
from coop.consent import grants, personal  # noqa: E402
from coop.consent import service as consent  # noqa: E402
from coop.consent.models import OAuthToken  # noqa: E402
from coop.consent.tokens import ACCESS_PREFIX, token_hash  # noqa: E402
from coop.db import tortoise_config  # noqa: E402
from coop.jobs.scoring import ScoringFlow  # noqa: E402
from coop.members import service as members  # noqa: E402
from coop.members import sessions  # noqa: E402
from coop.portability import erase, export  # noqa: E402
from coop.scoring import service as scoring  # noqa: E402
from coop.scoring.runner import InProcessRunner  # noqa: E402
from coop.types import utcnow  # noqa: E402
from coop.vault import Vault, load_keyring, load_secret_key  # noqa: E402
from tests.cluster.processes import coop, coop_env  # noqa: E402

ADMIN = os.environ.get("COOP_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


async def timed(work: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    await work()
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def _cpu_ticks(pid: int) -> int | None:
    """utime + stime of a process on this machine, in clock ticks (None if not visible)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])


class Target:
    """One filled database, its settings and the apps its members grant."""

    def __init__(self, size: int, env: dict[str, str], url: str, parallel: int) -> None:
        self.size = size
        self.parallel = parallel
        self.env = env
        self.url = url
        self.settings = Settings.from_env(env)
        self.vault = Vault(load_keyring(self.settings), load_secret_key(self.settings))
        runner = InProcessRunner()
        for scorer in scorer_objects().values():
            runner.add(scorer)
        self.runner = runner
        self.app: apps.RegisteredApp | None = None
        self.runs: list[dict[str, tuple[float, float]]] = []
        self.reads = 50  # authorized reads per member (their median is the member's figure)
        self.server_ticks = 0  # PostgreSQL's CPU over the measured reads
        self.server_reads = 0

    def server_us_per_read(self) -> float:
        return self.server_ticks / os.sysconf("SC_CLK_TCK") * 1e6 / max(self.server_reads, 1)

    async def prepare(self) -> float:
        """Schema from the migrations, the apps, then the fill; seconds the fill took."""
        done = coop(self.env, "migrate")
        if done.returncode != 0:
            raise RuntimeError(done.stderr)
        async with TortoiseContext() as ctx:
            await ctx.init(config=tortoise_config(self.settings))
            made = [
                await apps.create_app(
                    name=f"App {i}", redirect_uris=["https://x.example/cb"], vault=self.vault
                )
                for i in range(APPS)
            ]
        self.app = made[0]
        return await fill(self.url, self.size, self.vault.keyring.active_id, self.parallel)

    async def slice(self, members: int) -> None:
        """One warm-up member, then `members` measured ones."""
        self.monitor = await asyncpg.connect(self.url)
        try:
            async with TortoiseContext() as ctx:
                await ctx.init(config=tortoise_config(self.settings))
                await self.one_member(measured=False)
                for _ in range(members):
                    self.runs.append(await self.one_member(measured=True))
        finally:
            await self.monitor.close()

    async def backend_ticks(self) -> dict[int, int]:
        """CPU clock ticks used so far by each PostgreSQL backend serving this database
        (the server is on this machine; empty when /proc does not show them)."""
        pids = await self.monitor.fetch(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        found = {pid: _cpu_ticks(pid) for (pid,) in pids}
        return {pid: ticks for pid, ticks in found.items() if ticks is not None}

    async def one_member(self, *, measured: bool) -> dict[str, tuple[float, float]]:
        assert self.app is not None
        vault, settings, app = self.vault, self.settings, self.app
        member = await members.create_member(
            vault=vault, email=f"b-{secrets.token_hex(6)}@example.org", password="x" * 12
        )
        await add_posts(vault, member.id, 100)
        flow = ScoringFlow(vault, self.runner)
        for name in ("reach", "cadence"):
            await scoring.enable_scorer(member_id=member.id, meta=self.runner.meta(name))
        await flow.recompute_member(member_id=member.id, now=utcnow() + timedelta(seconds=1))
        grant = await grants.create_grant(
            member_id=member.id, app_id=app.app.id, scopes=["score:reach"], lifetime="30d"
        )
        access = ACCESS_PREFIX + secrets.token_urlsafe(32)
        await OAuthToken.create(
            id=uuid.uuid4(),
            access_hash=token_hash(access),
            grant=grant,
            client_id=app.app.client_id,
            family_id=uuid.uuid4(),
            scopes=["score:reach"],
            created_at=utcnow(),
            access_expires_at=grant.expires_at,
        )
        await personal.create_personal_token(
            member_id=member.id, name="b", scopes=["profile"], lifetime="30d"
        )

        async def read() -> None:
            principal = await consent.resolve_bearer(access)
            assert principal is not None and "reach" in principal.scores
            allowed = await consent.authorize_read(
                principal=principal, scope="score:reach", resource="score:reach"
            )
            assert allowed

        async def export_all() -> None:
            async for _ in await export.stream_export(vault=vault, member_id=member.id):
                pass

        out: dict[str, tuple[float, float]] = {}
        before = await self.backend_ticks()
        reads = [await timed(read) for _ in range(self.reads)]
        after = await self.backend_ticks()
        if measured:
            self.server_ticks += sum(t - before.get(pid, t) for pid, t in after.items())
            self.server_reads += len(reads)
        out["read"] = (
            statistics.median(r[0] for r in reads),
            statistics.median(r[1] for r in reads),
        )
        out["login"] = await timed(
            lambda: sessions.start(vault=vault, settings=settings, member=member, user_agent="b")
        )
        out["export"] = await timed(export_all)
        out["revoke"] = await timed(
            lambda: grants.revoke_grant(member_id=member.id, grant_id=grant.id)
        )
        marks: dict[str, float] = {}

        async def mark(step: str) -> None:
            marks[step] = time.perf_counter()

        cpu = time.process_time()
        await erase.erase_member(
            vault=vault, settings=settings, member_id=member.id, after_step=mark
        )
        out["erase (key)"] = ((marks["key_destroyed"] - marks["plan"]) * 1000, 0.0)
        out["erase (purge)"] = ((marks["purged"] - marks["upstream"]) * 1000, 0.0)
        out["erase (all)"] = (
            (marks["notified"] - marks["plan"]) * 1000,
            (time.process_time() - cpu) * 1000,
        )
        return out

    def p50(self) -> dict[str, tuple[float, float]]:
        return {
            op: (
                statistics.median(r[op][0] for r in self.runs),
                statistics.median(r[op][1] for r in self.runs),
            )
            for op in self.runs[0]
        }


async def main(sizes: list[int], samples: int, rounds: int, parallel: int) -> None:
    admin = await asyncpg.connect(ADMIN)
    base = ADMIN.split("://", 1)[1].rsplit("/", 1)[0]
    folder = Path(tempfile.mkdtemp(prefix="coop-bench-scale-"))
    env = coop_env(folder, "", COOP_DEV="1", COOP_SCHEDULER="0")
    names = [f"bench_scale_{size}_{secrets.token_hex(3)}" for size in sizes]
    targets: list[Target] = []
    try:
        for size, name in zip(sizes, names, strict=True):
            await admin.execute(f'CREATE DATABASE "{name}"')
            url = f"postgresql://{base}/{name}"
            target = Target(size, {**env, "COOP_DATABASE_URL": url}, url, parallel)
            filled = await target.prepare()
            load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
            print(f"{size:>9,} members: filled in {filled:.1f} s (load average {load})", flush=True)
            targets.append(target)
        per_slice = max(1, samples // rounds)
        for turn in range(rounds):
            for target in targets if turn % 2 == 0 else reversed(targets):
                await target.slice(per_slice)
            load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
            print(f"round {turn + 1}/{rounds} done (load average {load})", flush=True)
    finally:
        for name in names:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    report([(t.size, t.p50()) for t in targets])
    first = targets[0].server_us_per_read()
    print(
        "PostgreSQL CPU per authorized read (all its backends for this database, "
        + ", ".join(
            f"{t.server_reads} reads at {t.size:,}: {t.server_us_per_read():.0f} µs"
            + (f" x{t.server_us_per_read() / first:.2f}" if first and t is not targets[0] else "")
            for t in targets
        )
        + ")"
    )


def report(results: list[tuple[int, dict[str, tuple[float, float]]]]) -> None:
    smallest, first = results[0]
    print(f"\np50 ms (this process's CPU ms) per size; ratios to {smallest:,} members")
    for op in first:
        cells = [f"{smallest:,}: {first[op][0]:.2f} ({first[op][1]:.2f})"]
        for size, p50 in results[1:]:
            wall, cpu = p50[op]
            ratio = f"x{wall / first[op][0]:.2f}"
            if first[op][1]:
                ratio += f", cpu x{cpu / first[op][1]:.2f}"
            cells.append(f"{size:,}: {wall:.2f} ({cpu:.2f}) {ratio}")
        print(f"{op:<14} " + " | ".join(cells))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 100_000, 1_000_000])
    parser.add_argument("--members", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--fill-connections", type=int, default=2)
    args = parser.parse_args()
    asyncio.run(main(args.sizes, args.members, args.rounds, args.fill_connections))
