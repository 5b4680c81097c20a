"""Database faults against a real `coop serve` (LD-02, LD-03): PostgreSQL restarted, stopped,
and black-holed by a TCP proxy between coop and the database.

While the database is away every transport answers 503 with Retry-After, in its own shape
(HTML page, OAuth error JSON, GraphQL error with a code), within the configured timeouts and
never with a 500 or a traceback; once it is back, the same process serves again within
seconds, without a restart; and every read that was answered 200 has its access-log row.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.cluster.conftest import Seeded, migrated_env, seed_member
from tests.cluster.pg import PgCluster
from tests.cluster.processes import CoopProcess
from tests.cluster.proxy import TcpProxy

# Small bounds so that the test is quick; production defaults are in docs/operations.md.
TIMEOUTS = {
    "COOP_DB_CONNECT_TIMEOUT": "1",
    "COOP_DB_ACQUIRE_TIMEOUT": "1",
    "COOP_DB_STATEMENT_TIMEOUT": "2",
}
# The longest a request may wait on a dead database: connect (or acquire) plus one statement.
WORST_CASE = 1 + 2 + 1 + 1.5  # + the client-side grace and slack for a busy machine
READ = "{ viewer { handle } }"


@pytest.fixture(scope="module")
def proxy(cluster: PgCluster) -> Iterator[TcpProxy]:
    with TcpProxy(cluster.port) as running:
        yield running


# The API rate limit off, and on (every read charging the shared bucket in its bearer
# statement, too high a limit to refuse any).
@pytest.fixture(scope="module", params=["0", "100000000"], ids=["limit-off", "limit-on"])
def server(
    cluster: PgCluster,
    proxy: TcpProxy,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[CoopProcess]:
    folder: Path = tmp_path_factory.mktemp("faults")
    limit = str(request.param)
    env = migrated_env(cluster, folder, via_port=proxy.port, COOP_RATE_LIMIT=limit, **TIMEOUTS)
    process = CoopProcess(env, "serve", log_path=folder / "serve.log")
    try:
        process.wait_healthy()
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
async def member(server: CoopProcess) -> Seeded:
    return await seed_member(server.env)


@pytest.fixture
async def http(server: CoopProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        yield client


class Reader:
    """Reads the member's handle over and over; remembers every answer's status."""

    def __init__(self, http: httpx.AsyncClient, token: str) -> None:
        self.http = http
        self.token = token
        self.statuses: list[int] = []
        self._task: asyncio.Task[None] | None = None
        self._target = 0
        self._enough = asyncio.Event()

    async def read(self) -> httpx.Response:
        response = await self.http.post(
            "/graphql",
            json={"query": READ},
            headers={"Authorization": f"Bearer {self.token}"},
        )
        self.statuses.append(response.status_code)
        if self.acknowledged >= self._target:
            self._enough.set()
        return response

    async def until_acknowledged(self, count: int) -> None:
        self._target = count
        if self.acknowledged < count:
            self._enough.clear()
            await asyncio.wait_for(self._enough.wait(), timeout=30)

    async def _loop(self) -> None:
        while True:
            await self.read()
            await asyncio.sleep(0.02)

    def __enter__(self) -> Reader:
        self._task = asyncio.get_running_loop().create_task(self._loop())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()

    @property
    def acknowledged(self) -> int:
        return self.statuses.count(200)


async def logged_reads(cluster_url: str, member: Seeded) -> int:
    conn = await asyncpg.connect(cluster_url.replace("postgres://", "postgresql://", 1))
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM access_log WHERE member_id = $1", member.member_id
        )
        return count
    finally:
        await conn.close()


async def back_to_200(reader: Reader, within: float) -> float:
    """Seconds until a read answers 200 again (fails the test after `within`)."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        if (await reader.read()).status_code == 200:
            return time.monotonic() - started
        await asyncio.sleep(0.2)
    pytest.fail(f"not serving again {within} s after the database came back")


async def every_transport_answers_503(http: httpx.AsyncClient, member: Seeded, cookie: str) -> None:
    started = time.monotonic()
    graphql = await http.post(
        "/graphql",
        json={"query": READ},
        headers={"Authorization": f"Bearer {member.personal_token}"},
    )
    assert graphql.status_code == 503, graphql.text
    assert graphql.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert graphql.headers["retry-after"] == "5"

    http.cookies.set(cookie, member.session_token)
    page = await http.get("/account")
    assert page.status_code == 503
    assert page.headers["content-type"].startswith("text/html")
    assert "database_unavailable" in page.text
    assert page.headers["retry-after"] == "5"

    oauth = await http.post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": "x", "code_verifier": "y" * 43},
        auth=("some-client", "some-secret"),
    )
    assert oauth.status_code == 503, oauth.text
    assert oauth.json()["error"] == "temporarily_unavailable"
    assert oauth.headers["retry-after"] == "5"
    assert time.monotonic() - started < 3 * WORST_CASE


def assert_no_traceback(server: CoopProcess) -> None:
    lines = server.log().splitlines()
    assert [line for line in lines if "Traceback" in line or '"status": 500' in line] == []


async def test_a_restarted_database_gives_503s_then_service_again_without_loss(
    cluster: PgCluster, server: CoopProcess, member: Seeded, http: httpx.AsyncClient
) -> None:
    with Reader(http, member.personal_token) as reader:
        await reader.until_acknowledged(5)
        await asyncio.to_thread(cluster.restart, "fast")
        recovered = await back_to_200(reader, within=30)
        await asyncio.sleep(0.5)
    assert set(reader.statuses) <= {200, 503}, reader.statuses
    assert recovered < 30
    assert await logged_reads(server.env["COOP_TEST_DIRECT_URL"], member) >= reader.acknowledged
    assert_no_traceback(server)


async def test_a_stopped_database_gives_503_on_every_transport(
    cluster: PgCluster, server: CoopProcess, member: Seeded, http: httpx.AsyncClient
) -> None:
    cookie = "coop_session"
    reader = Reader(http, member.personal_token)
    assert (await reader.read()).status_code == 200
    await asyncio.to_thread(cluster.stop, "fast")
    try:
        await every_transport_answers_503(http, member, cookie)
    finally:
        await asyncio.to_thread(cluster.start)
    await back_to_200(reader, within=30)
    assert (await http.get("/account")).status_code == 200
    assert_no_traceback(server)


async def test_a_black_holed_database_gives_503_within_the_timeouts_then_recovers(
    proxy: TcpProxy, server: CoopProcess, member: Seeded, http: httpx.AsyncClient
) -> None:
    cookie = "coop_session"
    with Reader(http, member.personal_token) as reader:
        await reader.until_acknowledged(3)
        proxy.blackhole()
        try:
            await asyncio.sleep(0.3)  # the reader's requests now hang on the database
            await every_transport_answers_503(http, member, cookie)
        finally:
            proxy.heal()
        await back_to_200(reader, within=30)
    assert set(reader.statuses) <= {200, 503}, reader.statuses
    assert await logged_reads(server.env["COOP_TEST_DIRECT_URL"], member) >= reader.acknowledged
    assert_no_traceback(server)
