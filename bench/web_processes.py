"""Web processes: `coop serve --workers 2` against `--workers 1` on the authorized read.

Issue 15 part 6 asks for throughput with 2 web processes >= 1.7x one process on the
authorized read, with the load generator pinned apart from the servers. One run:

1. a scratch PostgreSQL database (`COOP_BENCH_POSTGRES_URL`, default the test server; or
   `--engine sqlite`, a temporary file) migrated with `coop migrate` and seeded through
   coop's services with `--members` members, each with a grant to one app for
   `score:reach`, an access token and two reach scores;
2. two servers started side by side, `coop serve --workers 1` and `coop serve --workers 2`
   (`--no-jobs`, as web machines run, unless `--jobs`), pinned with `taskset` to
   `--server-cpus`;
3. the load generator (bench/graphql.py's raw-socket HTTP/1.1 keep-alive client, one
   process, connection i reading as member i) pinned to `--generator-cpu`, driving the
   two servers in alternating slices (1, 2, 2, 1, ...).

For each server it prints req/s, p50/p99 and, from /proc over the measured window only
(the generator says when its warm-up ends and its slice stops), the CPU time per request
of the web processes, of the PostgreSQL backends serving them and of the generator; for
each web process's event loop the share of the window it ran, waited runnable for a CPU
and slept (/proc/PID/schedstat: sleeping while requests wait means something other than
the CPU holds it back; an uneven split of "ran" means the kernel spread the connections
unevenly); the CPU the servers use when idle (background work); and what the PostgreSQL
backends were doing (pg_stat_activity sampled every 20 ms: row locks would show as
`Lock:*`, the WAL flush as `IO:WALSync` / `LWLock:WALWrite`). The throughput
ratio is measured; the capacity ratio, 2 x (CPU us/request with one process) / (CPU
us/request with two), is what two processes give once each has a core of its own and
PostgreSQL and the generator have theirs: on a machine with fewer cores than that (this
one has 2) the measured ratio is bounded by the cores, and the CPU figures say whether the
processes themselves scale.

Usage: python bench/web_processes.py [--engine postgres|sqlite] [--seconds 12] [--rounds 4]
           [--connections 64] [--members 32] [--server-cpus 0] [--generator-cpu 1]
           [--rate-limit 0] [--jobs] [--compare workers|rate-limit]
(--rate-limit N turns the API rate limit on at N requests per minute per client: on
PostgreSQL every read then also charges the client's shared bucket. `--compare rate-limit`
measures that cost instead: two `--workers 1` servers, the limit off and on (at
--rate-limit, default 100000000: every read charged, none refused), and prints the CPU per
request with the limit against without.)
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import importlib.util
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import suppress
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# bench/graphql.py is named like the `graphql` package: load it by path, keep bench/ off
# the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]
_spec = importlib.util.spec_from_file_location("bench_graphql", ROOT / "bench" / "graphql.py")
assert _spec is not None and _spec.loader is not None
gq = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gq)

ADMIN = os.environ.get("COOP_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
READ = gq.SCORE_QUERY  # the authorized read: { viewer { score(scorer: "reach") { value } } }


# -- seeding -------------------------------------------------------------------------------------


async def seed(env: dict[str, str], count: int) -> list[str]:
    """`count` members, each with a grant to one app for score:reach, an access token and
    two reach scores; return the access tokens."""
    from datetime import timedelta
    from importlib import metadata

    from tortoise import Tortoise

    from coop.apps import service as apps
    from coop.config import Settings
    from coop.consent import grants
    from coop.consent.models import OAuthToken
    from coop.consent.tokens import ACCESS_PREFIX, token_hash
    from coop.db import tortoise_config
    from coop.members import service as members
    from coop.scoring import service as scoring
    from coop.scoring.sandbox import InProcessRunner
    from coop.types import utcnow
    from coop.vault import Vault, load_keyring, load_secret_key

    settings = Settings.from_env(env)
    vault = Vault(load_keyring(settings), load_secret_key(settings))
    runner = InProcessRunner()
    for point in metadata.entry_points(group="coop.scorers"):
        if point.name == "reach":
            runner.add(point.load())
    await Tortoise.init(config=tortoise_config(settings))
    tokens = []
    try:
        app = await apps.create_app(name="Bench App", redirect_uris=["https://app.example/cb"])
        now = utcnow()
        for i in range(count):
            member = await members.create_member(
                vault=vault, email=f"bench{i}@example.org", password="x" * 12
            )
            grant = await grants.create_grant(
                member_id=member.id, app_id=app.app.id, scopes=["score:reach"], lifetime="1y"
            )
            access = ACCESS_PREFIX + secrets.token_urlsafe(32)
            await OAuthToken.create(
                id=uuid.uuid4(),
                access_hash=token_hash(access),
                grant=grant,
                client_id=app.app.client_id,
                family_id=uuid.uuid4(),
                scopes=["score:reach"],
                created_at=now,
                access_expires_at=now + timedelta(days=30),
            )
            tokens.append(access)
            await scoring.enable_scorer(member_id=member.id, meta=runner.meta("reach"))
            for n in (20, 30):
                records = [
                    scoring.MemberRecord(
                        record_id=uuid.uuid4(),
                        kind="post",
                        occurred_at=now - timedelta(days=d),
                        counts={"favourites": 5 + d, "reblogs": d % 3},
                    )
                    for d in range(n)
                ]
                await scoring.compute_score(
                    vault=vault, runner=runner, member_id=member.id, scorer="reach", records=records
                )
    finally:
        await Tortoise.close_connections()
    return tokens


# -- the load generator (a child process, pinned) ------------------------------------------------


async def _drive(port: int, payloads: list[bytes], seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    failures: list[int] = []
    warm = time.perf_counter() + 0.5
    await asyncio.gather(*(gq._worker(port, p, warm, [], []) for p in payloads))
    # Tell the parent when the measured window opens and closes (it reads the servers' and
    # the database's CPU time then), on new connections as in graphql.py's slices.
    print("start", flush=True)
    cpu = time.process_time()
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(gq._worker(port, p, deadline, latencies, failures) for p in payloads))
    elapsed = time.perf_counter() - started
    print("stop", flush=True)
    return {
        "elapsed": elapsed,
        "generator_cpu": time.process_time() - cpu,
        "failures": len(failures),
        "latencies": [round(x, 6) for x in latencies],
    }


def drive(port: int, tokens: list[str], connections: int, seconds: float) -> None:
    """Child process entry: connection i reads as member i (mod the members); one JSON line."""
    with suppress(ImportError):
        import uvloop

        uvloop.install()
    payloads = [gq.request_bytes(port, READ, tokens[i % len(tokens)]) for i in range(connections)]
    print(json.dumps(asyncio.run(_drive(port, payloads, seconds))))


# -- /proc and pg_stat_activity ---------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (uvicorn's supervisor and its web processes)."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            with suppress(OSError):
                todo.extend(int(c) for c in (task / "children").read_text().split())
    return out


def cpu_of(pids: list[int]) -> dict[int, float]:
    return {pid: gq.cpu_seconds(pid) for pid in pids}


def sched_of(pids: list[int]) -> dict[int, tuple[float, float]]:
    """Seconds each process's main thread (the event loop) has run, and has waited runnable
    for a CPU (/proc/PID/schedstat)."""
    out = {}
    for pid in pids:
        try:
            ran, queued = Path(f"/proc/{pid}/schedstat").read_text().split()[:2]
        except (OSError, ValueError):
            ran = queued = "0"
        out[pid] = (int(ran) / 1e9, int(queued) / 1e9)
    return out


class Backends:
    """The PostgreSQL backends of the scratch database: their CPU from /proc (the server runs
    on this machine) and sampled wait events."""

    def __init__(self, url: str, database: str) -> None:
        self.url = url
        self.database = database
        self.conn: Any = None

    async def open(self) -> None:
        import asyncpg

        self.conn = await asyncpg.connect(self.url)

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close()

    async def pids(self) -> list[int]:
        rows = await self.conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            self.database,
        )
        return [r["pid"] for r in rows]

    async def sample(self, until: float, counts: dict[str, int]) -> None:
        """Every 20 ms until `until`: each active backend's wait (or 'cpu' when running)."""
        while time.perf_counter() < until:
            rows = await self.conn.fetch(
                "SELECT wait_event_type, wait_event FROM pg_stat_activity WHERE datname = $1 "
                "AND state = 'active' AND pid <> pg_backend_pid()",
                self.database,
            )
            counts["samples"] = counts.get("samples", 0) + 1
            for r in rows:
                kind = r["wait_event_type"] or "cpu"
                name = f"{kind}:{r['wait_event']}" if r["wait_event"] else kind
                counts[name] = counts.get(name, 0) + 1
            await asyncio.sleep(0.02)


# -- one slice ------------------------------------------------------------------------------------


async def slice_(
    args: argparse.Namespace,
    port: int,
    server_pid: int,
    tokens_file: str,
    backends: Backends | None,
) -> dict[str, Any]:
    pids = process_tree(server_pid)
    seconds = args.seconds / args.rounds
    child = await asyncio.create_subprocess_exec(
        "taskset",
        "-c",
        args.generator_cpu,
        sys.executable,
        __file__,
        "--drive",
        str(port),
        tokens_file,
        str(args.connections),
        str(seconds),
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    await child.stdout.readline()  # "start": the warm-up is over
    opened = time.perf_counter()
    before, sched = cpu_of(pids), sched_of(pids)
    pg_before = cpu_of(await backends.pids()) if backends else {}
    waits: dict[str, int] = {}
    sampler = None
    if backends is not None:
        sampler = asyncio.create_task(backends.sample(opened + seconds - 0.1, waits))
    await child.stdout.readline()  # "stop"
    after, sched_after = cpu_of(pids), sched_of(pids)
    window = time.perf_counter() - opened
    pg_after = cpu_of(await backends.pids()) if backends else {}
    out, _ = await child.communicate()
    if sampler is not None:
        await sampler
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    result["window"] = window
    result["server_cpu"] = {pid: after[pid] - before.get(pid, 0.0) for pid in pids}
    result["server_sched"] = {
        pid: [sched_after[pid][i] - sched[pid][i] for i in (0, 1)] for pid in pids
    }
    result["pg_cpu"] = sum(v - pg_before.get(pid, 0.0) for pid, v in pg_after.items())
    result["waits"] = waits
    return result


def merge(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = dict(gq.summary([{"cpu": 0.0, **r} for r in runs]))
    n = out["requests"] or 1
    per_pid: dict[int, float] = {}
    sched: dict[int, list[float]] = {}
    for r in runs:
        for pid, cpu in r["server_cpu"].items():
            per_pid[pid] = per_pid.get(pid, 0.0) + cpu
            ran, queued = r["server_sched"][pid]
            sched[pid] = [
                a + b for a, b in zip(sched.get(pid, [0.0, 0.0]), (ran, queued), strict=True)
            ]
    server = sum(per_pid.values())
    out["server_us"] = server / n * 1e6
    out["pg_us"] = sum(r["pg_cpu"] for r in runs) / n * 1e6
    out["generator_us"] = sum(r["generator_cpu"] for r in runs) / n * 1e6
    # Per web process, its event loop's share of the slice: running, waiting for a CPU, and
    # asleep (waiting for the database or for requests); the idle supervisor is left out.
    window = sum(r["window"] for r in runs)
    busy = sorted(((r / window, q / window) for r, q in sched.values()), reverse=True)
    out["busy"] = [f"{b:.2f}/{q:.2f}/{max(0.0, 1 - b - q):.2f}" for b, q in busy if b >= 0.01]
    waits: dict[str, int] = {}
    for r in runs:
        for k, v in r["waits"].items():
            waits[k] = waits.get(k, 0) + v
    samples = waits.pop("samples", 0) or 1
    out["waits"] = {k: round(v / samples, 2) for k, v in sorted(waits.items(), key=lambda x: -x[1])}
    return out


# -- orchestration --------------------------------------------------------------------------------


def start_server(
    env: dict[str, str], workers: int, cpus: str, jobs: bool
) -> tuple[int, subprocess.Popen[bytes]]:
    """`coop serve --workers N` on a free port, pinned to `cpus`."""
    port = gq.free_port()
    command = ["taskset", "-c", cpus, sys.executable, "-m", "coop", "serve"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    if not jobs:
        command.append("--no-jobs")
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return port, proc


def wait_healthy(port: int, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    gq.wait_ready(port, proc, timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            if s.recv(64)[9:12] == b"200":
                return
        time.sleep(0.2)
    raise RuntimeError(f"server on port {port} is not healthy")


async def run(args: argparse.Namespace, env: dict[str, str], database: str | None) -> int:
    tokens = await seed(env, args.members)
    backends = None
    if database is not None:
        backends = Backends(ADMIN, database)
        await backends.open()
    servers: dict[str, tuple[int, subprocess.Popen[bytes]]] = {}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(tokens, f)
        tokens_file = f.name
    try:
        for name, (workers, server_env) in server_specs(args, env).items():
            servers[name] = start_server(server_env, workers, args.server_cpus, args.jobs)
        for port, proc in servers.values():
            wait_healthy(port, proc)
            for token in tokens:  # every web process has seen every query shape
                gq.warm(port, READ, token)
        idle = idle_cpu(servers)
        for name, (_, proc) in servers.items():
            # The web processes and whatever they started (the scorer sandbox's template).
            print(f"{name}: {len(process_tree(proc.pid))} processes in its tree", flush=True)
        slices: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
        ratios = []
        for round_ in range(args.rounds):
            order = list(servers) if round_ % 2 == 0 else list(reversed(servers))
            rates = {}
            for name in order:
                port, proc = servers[name]
                got = await slice_(args, port, proc.pid, tokens_file, backends)
                slices[name].append(got)
                rates[name] = len(got["latencies"]) / got["elapsed"]
            one, two = list(servers)
            ratios.append(rates[two] / rates[one])
    finally:
        for _, proc in servers.values():
            gq.stop(proc)
        if backends is not None:
            await backends.close()
        os.unlink(tokens_file)
    report(args, {name: merge(runs) for name, runs in slices.items()}, ratios, idle)
    return 0


def server_specs(
    args: argparse.Namespace, env: dict[str, str]
) -> dict[str, tuple[int, dict[str, str]]]:
    """The two servers compared: name -> (web processes, environment)."""
    if args.compare == "rate-limit":
        limit = str(args.rate_limit or 100_000_000)
        return {
            "limit off": (1, {**env, "COOP_RATE_LIMIT": "0"}),
            "limit on": (1, {**env, "COOP_RATE_LIMIT": limit}),
        }
    return {"1 process": (1, env), "2 processes": (2, env)}


def idle_cpu(
    servers: dict[str, tuple[int, subprocess.Popen[bytes]]], seconds: float = 5.0
) -> dict[str, float]:
    """CPU seconds per second each server spends with no request at all (background work)."""
    trees = {name: process_tree(proc.pid) for name, (_, proc) in servers.items()}
    before = {name: sum(cpu_of(pids).values()) for name, pids in trees.items()}
    time.sleep(seconds)
    return {
        name: (sum(cpu_of(pids).values()) - before[name]) / seconds for name, pids in trees.items()
    }


def report(
    args: argparse.Namespace,
    results: dict[str, dict[str, Any]],
    ratios: list[float],
    idle: dict[str, float],
) -> None:
    print(
        f"{args.engine}, {args.members} members, {args.connections} connections, "
        f"{args.seconds:g} s per server in {args.rounds} alternating slices; servers on CPUs "
        f"{args.server_cpus}, generator on CPU {args.generator_cpu}; "
        f"{'jobs on' if args.jobs else '--no-jobs'}, rate limit "
        + (
            f"off against {args.rate_limit or 100_000_000}/min"
            if args.compare == "rate-limit"
            else f"{args.rate_limit or 'off'}"
        )
    )
    print(
        f"{'':12} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'fail':>5} "
        f"{'web us':>7} {'pg us':>6} {'gen us':>6}  event loop per process: ran/queued/slept"
    )
    for name, r in results.items():
        print(
            f"{name:12} {r['rps']:7.0f} {r['p50_ms']:7.2f} {r['p99_ms']:7.2f} "
            f"{int(r['failures']):5d} {r['server_us']:7.0f} {r['pg_us']:6.0f} "
            f"{r['generator_us']:6.0f}  {r['busy']}"
        )
    for name, r in results.items():
        print(
            f"  {name}: idle {idle[name]:.3f} CPU s/s; PostgreSQL backends per sample: {r['waits']}"
        )
    one, two = results.values()
    if args.compare == "rate-limit":
        report_rate_limit(one, two, ratios)
        return
    measured = two["rps"] / one["rps"] if one["rps"] else 0.0
    capacity = 2 * one["server_us"] / two["server_us"] if two["server_us"] else 0.0
    print(
        f"throughput ratio 2/1: {measured:.2f} (median of slice pairs "
        f"{statistics.median(ratios):.2f}); capacity ratio 2 x web CPU/req(1) / web "
        f"CPU/req(2): {capacity:.2f} (target >= 1.7)"
    )
    if args.engine == "postgres":
        cores = (two["server_us"] + two["pg_us"] + two["generator_us"]) / two["server_us"] * 2
        print(
            f"two web processes at full speed need about {cores:.1f} cores here (2 for the web "
            "processes, the rest for PostgreSQL and the generator at their CPU per request)"
        )


def report_rate_limit(off: dict[str, Any], on: dict[str, Any], ratios: list[float]) -> None:
    """What charging the shared bucket costs a read: CPU per request, on against off."""
    web = on["server_us"] / off["server_us"] if off["server_us"] else 0.0
    pg = on["pg_us"] / off["pg_us"] if off["pg_us"] else 0.0
    print(
        f"limit on / off: web CPU per request {web:.2f} (+{on['server_us'] - off['server_us']:.0f}"
        f" us), PostgreSQL CPU per request {pg:.2f} (+{on['pg_us'] - off['pg_us']:.0f} us), "
        f"throughput {on['rps'] / off['rps'] if off['rps'] else 0.0:.2f} (median of slice "
        f"pairs {statistics.median(ratios):.2f})"
    )


async def admin(statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(ADMIN)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--seconds", type=float, default=12.0, help="per server")
    parser.add_argument("--rounds", type=int, default=4)
    # Enough reads in flight to keep the servers busy while each waits for its access-log
    # commit (a closed loop with few connections measures the disk's sync latency).
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--members", type=int, default=32)
    cpus = sorted(os.sched_getaffinity(0))
    parser.add_argument("--server-cpus", default=",".join(str(c) for c in cpus[:-1] or cpus))
    parser.add_argument("--generator-cpu", default=str(cpus[-1]))
    parser.add_argument("--rate-limit", type=int, default=0)
    parser.add_argument("--jobs", action="store_true", help="serve without --no-jobs")
    parser.add_argument("--compare", choices=("workers", "rate-limit"), default="workers")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="coop-bench-web-") as tmp:
        key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("COOP_")},
            "COOP_DATA_DIR": tmp,
            "COOP_MASTER_KEY": f"bench-1:{key}",
            "COOP_SECRET_KEY": secrets.token_urlsafe(48),
            "COOP_ISSUER": "http://127.0.0.1:8000",
            "COOP_RATE_LIMIT": str(args.rate_limit),
            "COOP_DEV": "0",
        }
        database = None
        if args.engine == "sqlite":
            env["COOP_DATABASE_URL"] = f"sqlite://{tmp}/coop.sqlite3"
        else:
            database = f"coop_bench_web_{secrets.token_hex(4)}"
            asyncio.run(admin(f'CREATE DATABASE "{database}"'))
            env["COOP_DATABASE_URL"] = (
                "postgres://" + ADMIN.split("://", 1)[1].rsplit("/", 1)[0] + f"/{database}"
            )
        try:
            subprocess.run([sys.executable, "-m", "coop", "migrate"], env=env, check=True)
            return asyncio.run(run(args, env, database))
        finally:
            if database is not None:
                asyncio.run(admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--drive":
        port, tokens_file, connections, seconds = sys.argv[2:6]
        drive(
            int(port), json.loads(Path(tokens_file).read_text()), int(connections), float(seconds)
        )
    else:
        sys.exit(main())
