"""GraphQL API benchmark: every documented read shape against a bare strawberry `{ hello }`.

Starts, in one run and on the same stack (one uvicorn worker, uvloop + httptools):
  1. the real coop server (`coop serve`) on a temporary SQLite database seeded with a member,
     an app grant for `score:reach` and a reach score, COOP_RATE_LIMIT=0;
  2. a bare strawberry server answering `{ hello }` with ParserCache + ValidationCache;
then drives both with the same load generator (an asyncio raw-socket HTTP/1.1 keep-alive
client, pure Python, in its own process) in alternating slices (bare, shape 1, ..., shape N,
then the reverse order, ...) and prints req/s, p50/p99, each server's CPU time per request
(from /proc) and each shape's ratio to bare measured in the same run.
The shapes (SHAPES below) are the ones docs/api.md documents: one score (literal and
variable), the list of scores, a score with its explanation, a history page (app token with
`score:reach score:reach:history`), and self-service reads (a personal token with
`member:manage`: grants and sharing, the access log, connections and scorer settings).
On a shared machine the CPU-time ratio is the steadier figure: other work steals wall time
from both servers unevenly, but not CPU time.

Targets (issues #6, #17): every shape >= 50% of bare throughput, p99 <= 3x bare.
The generator itself tops out around a few thousand req/s on one core: it is measured first
against the bare server at the same concurrency, so both runs share its ceiling.

Usage: python bench/graphql.py [--seconds 8] [--connections 16] [--rounds 4]
                               [--shapes score,list,...] [--query DOCUMENT] [--variables JSON]
                               [--personal]
(--shapes picks some of SHAPES; --query/--variables measure one other document instead, with
the app token, or the personal token with --personal.)
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# This file is named like the `graphql` package: keep its folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]
SCORE_QUERY = '{ viewer { score(scorer: "reach") { value } } }'
HELLO_QUERY = "{ hello }"
APP, PERSONAL = "app", "personal"
# name -> (which token, the request: a document, or a JSON body with variables)
SHAPES: dict[str, tuple[str, str]] = {
    "score": (APP, SCORE_QUERY),
    "score $var": (
        APP,
        json.dumps(
            {
                "query": "query Read($s: String!) { viewer { score(scorer: $s) { value } } }",
                "variables": {"s": "reach"},
            }
        ),
    ),
    "list": (APP, "{ viewer { scores { value computedAt scorer { name } } } }"),
    "explanation": (
        APP,
        '{ viewer { score(scorer: "reach") { value explanation { reasons '
        "contributions { amount reason } } } } }",
    ),
    "history": (
        APP,
        '{ viewer { scoreHistory(scorer: "reach", first: 10) { edges { node { value '
        "computedAt change } } pageInfo { hasNextPage endCursor } } } }",
    ),
    "self: grants": (
        PERSONAL,
        "{ viewer { sharingPaused grants { appName status scopes lastAccessAt } } }",
    ),
    "self: access log": (
        PERSONAL,
        "{ viewer { accessLog(first: 10) { edges { node { appName scope at } } "
        "pageInfo { hasNextPage endCursor } } } }",
    ),
    "self: settings": (
        PERSONAL,
        "{ viewer { connections { title state records } scorerSettings { enabled "
        "awaitingConsent scorer { name version } } } }",
    ),
}
BARE = "bare { hello }"


# -- the bare baseline server ------------------------------------------------------------------


def bare_app() -> object:
    import strawberry
    from strawberry.asgi import GraphQL
    from strawberry.extensions import ParserCache, ValidationCache

    @strawberry.type
    class Query:
        @strawberry.field
        def hello(self) -> str:
            return "world"

    schema = strawberry.Schema(
        Query, extensions=[lambda: ParserCache(maxsize=256), lambda: ValidationCache(maxsize=256)]
    )
    return GraphQL(schema, graphql_ide=None, allow_queries_via_get=False)


def serve_bare(port: int) -> None:
    import gc

    import uvicorn

    app = bare_app()
    gc.freeze()
    uvicorn.run(
        app,  # type: ignore[arg-type]
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )


# -- seeding the real server's database --------------------------------------------------------


async def seed(env: dict[str, str]) -> dict[str, str]:
    """Create a member, an app, a grant (score:reach and its history) and its access token,
    a personal token (member:manage), and two reach scores (history has two entries, the
    access log a few rows); return the tokens by kind (APP, PERSONAL)."""
    import hashlib
    import uuid
    from datetime import timedelta
    from importlib import metadata

    from tortoise import Tortoise

    from coop.apps import service as apps
    from coop.config import Settings
    from coop.consent import grants, personal, tokens
    from coop.db import ensure_data_dir, tortoise_config
    from coop.members import service as members
    from coop.scoring import service as scoring
    from coop.scoring.sandbox import InProcessRunner
    from coop.types import utcnow
    from coop.vault import Vault, load_keyring, load_secret_key

    settings = Settings.from_env(env)
    vault = Vault(load_keyring(settings), load_secret_key(settings))
    ensure_data_dir(settings)
    await Tortoise.init(config=tortoise_config(settings))
    # The schema straight from the models (coop/migrations is regenerated at integration).
    await Tortoise.generate_schemas(safe=True)
    try:
        member = await members.create_member(
            vault=vault,
            email="bench@example.org",
            password="correct horse battery staple",  # noqa: S106
        )
        app = await apps.create_app(name="Bench App", redirect_uris=["https://app.example/cb"])
        grant = await grants.create_grant(
            member_id=member.id,
            app_id=app.app.id,
            scopes=["score:reach", "score:reach:history"],
            lifetime="1y",
        )
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        code = await tokens.create_code(
            grant=grant,
            client_id=app.app.client_id,
            redirect_uri="https://app.example/cb",
            redirect_uri_given=True,
            code_challenge=challenge.decode().rstrip("="),
        )
        issued = await tokens.exchange_code(
            code=code,
            client_id=app.app.client_id,
            redirect_uri="https://app.example/cb",
            code_verifier=verifier,
        )
        runner = InProcessRunner()
        for point in metadata.entry_points(group="coop.scorers"):
            if point.name == "reach":
                runner.add(point.load())
        await scoring.enable_scorer(member_id=member.id, meta=runner.meta("reach"))
        now = utcnow()
        for n in (40, 50):
            records = [
                scoring.MemberRecord(
                    record_id=uuid.uuid4(),
                    kind="post",
                    occurred_at=now - timedelta(days=i),
                    counts={"favourites": 5 + i, "reblogs": i % 3},
                )
                for i in range(n)
            ]
            await scoring.compute_score(
                vault=vault, runner=runner, member_id=member.id, scorer="reach", records=records
            )
        pat = await personal.create_personal_token(
            member_id=member.id, name="bench", scopes=["member:manage"], lifetime="30d"
        )
        return {APP: issued.access_token, PERSONAL: pat.token}
    finally:
        await Tortoise.close_connections()


# -- the load generator -------------------------------------------------------------------------


def request_bytes(port: int, query: str, token: str | None) -> bytes:
    """`query` is a document, or a JSON object with `query` and `variables`."""
    body = (query if query.startswith('{"') else json.dumps({"query": query})).encode()
    head = [
        "POST /graphql HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
    ]
    if token:
        head.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        body = await reader.readexactly(length)
        if status == 200 and b'"errors"' in body:
            return 599  # a GraphQL error counts as a failure
    return status


async def _worker(
    port: int, payload: bytes, deadline: float, latencies: list[float], failures: list[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(payload)
            status = await _read_response(reader)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                failures.append(status)
    finally:
        writer.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far (Linux /proc; 0.0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _drive(
    port: int, pid: int, payload: bytes, seconds: float, connections: int
) -> dict[str, Any]:
    latencies: list[float] = []
    failures: list[int] = []
    warm = time.perf_counter() + 0.5
    await asyncio.gather(*(_worker(port, payload, warm, [], []) for _ in range(connections)))
    cpu = cpu_seconds(pid)
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(
        *(_worker(port, payload, deadline, latencies, failures) for _ in range(connections))
    )
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(pid) - cpu
    return {
        "elapsed": elapsed,
        "cpu": cpu,
        "failures": len(failures),
        "latencies": [round(x, 6) for x in latencies],
    }


def drive(
    port: int, pid: int, query: str, token: str | None, seconds: float, connections: int
) -> None:
    """Child process entry: print one JSON line with the measurement."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    payload = request_bytes(port, query, token)
    print(json.dumps(asyncio.run(_drive(port, pid, payload, seconds, connections))))


def summary(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Several slices of one target, merged: req/s, percentiles, server CPU per request."""
    latencies = sorted(x for run in runs for x in run["latencies"])
    n = len(latencies)
    elapsed = sum(run["elapsed"] for run in runs)
    return {
        "requests": n,
        "failures": sum(run["failures"] for run in runs),
        "rps": n / elapsed if elapsed else 0.0,
        "p50_ms": latencies[n // 2] * 1000 if n else 0.0,
        "p99_ms": latencies[min(n - 1, int(n * 0.99))] * 1000 if n else 0.0,
        "cpu_us": sum(run["cpu"] for run in runs) / n * 1e6 if n else 0.0,
    }


# -- orchestration -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not start")


def measure(
    port: int, pid: int, query: str, token: str | None, seconds: float, connections: int
) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--drive",
            str(port),
            str(pid),
            query,
            token or "",
            str(seconds),
            str(connections),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def warm(port: int, query: str, token: str | None, timeout: float = 180.0) -> None:
    """One request, answered before measuring: a first read may wait for start-up work (the
    scorer sandbox's template, which `scorerSettings` asks about)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request_bytes(port, query, token))
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(65536)
            if not chunk:
                raise RuntimeError(f"server on port {port} closed the connection")
            head += chunk
    if head[9:12] != b"200":
        raise RuntimeError(f"warm-up answered {head[:12]!r} for {query[:60]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def chosen_shapes(args: argparse.Namespace) -> dict[str, tuple[str, str]]:
    if args.query is not None:
        request = args.query
        if args.variables is not None:
            request = json.dumps({"query": args.query, "variables": args.variables})
        return {"coop --query": (PERSONAL if args.personal else APP, request)}
    if args.shapes is None:
        return dict(SHAPES)
    names = [n.strip() for n in args.shapes.split(",") if n.strip()]
    unknown = [n for n in names if n not in SHAPES]
    if unknown:
        raise SystemExit(f"unknown shapes {unknown}; choose from {list(SHAPES)}")
    return {n: SHAPES[n] for n in names}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="per target")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=4, help="alternating slices per target")
    parser.add_argument("--shapes", default=None, help=f"comma-separated, of {list(SHAPES)}")
    parser.add_argument("--query", default=None, help="one other document coop answers")
    parser.add_argument("--variables", type=json.loads, default=None, help="a JSON object")
    parser.add_argument("--personal", action="store_true", help="--query with the PAT")
    args = parser.parse_args()
    shapes = chosen_shapes(args)

    with tempfile.TemporaryDirectory(prefix="coop-bench-") as tmp:
        key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        env = {
            **os.environ,
            "COOP_DATA_DIR": tmp,
            "COOP_DATABASE_URL": f"sqlite://{tmp}/coop.sqlite3",
            "COOP_MASTER_KEY": f"bench-1:{key}",
            "COOP_SECRET_KEY": secrets.token_urlsafe(48),
            "COOP_RATE_LIMIT": "0",
            "COOP_DEV": "0",
            # The API alone: no background syncs, scoring or housekeeping during the slices.
            "COOP_SCHEDULER": "0",
        }
        coop = [sys.executable, "-m", "coop"]
        tokens = asyncio.run(seed(env))

        bare_port, coop_port = free_port(), free_port()
        bare = subprocess.Popen([sys.executable, __file__, "--bare", str(bare_port)])
        server = subprocess.Popen(
            [*coop, "serve", "--port", str(coop_port)], env=env, stderr=subprocess.DEVNULL
        )
        try:
            wait_ready(bare_port, bare)
            wait_ready(coop_port, server)
            targets = {BARE: (bare_port, bare.pid, HELLO_QUERY, None)}
            for name, (kind, request) in shapes.items():
                targets[name] = (coop_port, server.pid, request, tokens[kind])
            for port, _, query, tok in targets.values():
                warm(port, query, tok)
            # Alternate short slices (bare, shapes..., then the reverse) so that load from
            # other work on a shared machine hits every target alike; each shape's ratio per
            # round is against the bare slice of the same round.
            slices: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
            ratios: dict[str, list[float]] = {name: [] for name in shapes}
            for round_ in range(args.rounds):
                order = list(targets) if round_ % 2 == 0 else list(reversed(targets))
                got = {}
                for name in order:
                    port, pid, query, tok = targets[name]
                    got[name] = measure(
                        port, pid, query, tok, args.seconds / args.rounds, args.connections
                    )
                    slices[name].append(got[name])
                rates = {name: len(r["latencies"]) / r["elapsed"] for name, r in got.items()}
                for name in shapes:
                    ratios[name].append(rates[name] / rates[BARE])
            results = {name: summary(runs) for name, runs in slices.items()}
            low = {
                name: summary([measure(port, pid, query, tok, args.seconds / 2, 1)])
                for name, (port, pid, query, tok) in targets.items()
            }
        finally:
            stop(server)
            stop(bare)

    print(
        f"{args.connections} connections, {args.seconds:g} s per target in {args.rounds} "
        "alternating slices, one uvicorn worker each"
    )
    if args.query is not None:
        print(f"coop answers: {shapes['coop --query'][1]}")
    print(
        f"{'':18} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'fail':>5} {'CPU us':>7}"
        f" {'1 conn p50/p99':>15} {'ratio':>6} {'median':>7} {'CPU r':>6} {'p99 r':>6}"
    )
    base = results[BARE]
    failed = False
    for name, r in results.items():
        one = low[name]
        line = (
            f"{name:18} {r['rps']:7.0f} {r['p50_ms']:7.2f} {r['p99_ms']:7.2f} "
            f"{int(r['failures']):5d} {r['cpu_us']:7.0f} "
            f"{one['p50_ms']:7.2f}/{one['p99_ms']:<7.2f}"
        )
        if name != BARE:
            cpu = base["cpu_us"] / r["cpu_us"] if r["cpu_us"] else 0.0
            p99 = r["p99_ms"] / base["p99_ms"] if base["p99_ms"] else float("inf")
            line += (
                f" {r['rps'] / base['rps']:6.2f} {statistics.median(ratios[name]):7.2f}"
                f" {cpu:6.2f} {p99:6.2f}"
            )
            failed = failed or r["failures"] > 0
        print(line)
    print(
        "ratio: req/s against bare over the whole run (target >= 0.50); median: of the "
        "per-round ratios; CPU r: bare CPU us/req over the shape's (what the ratio would be "
        "with a core each); p99 r: the shape's p99 over bare's at "
        f"{args.connections} connections (target <= 3)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--bare":
        serve_bare(int(sys.argv[2]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--drive":
        port, pid, query, token, seconds, conns = sys.argv[2:8]
        drive(int(port), int(pid), query, token or None, float(seconds), int(conns))
    else:
        sys.exit(main())
