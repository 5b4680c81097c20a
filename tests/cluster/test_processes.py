"""Several real `coop serve` processes on one PostgreSQL database behave as one cooperative:
one rate limit for all of them (in PostgreSQL, or in Redis with COOP_REDIS_URL), and a
member's session, tokens, revocation and pause hold on every process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cluster.conftest import Seeded, migrated_env, seed_member
from tests.cluster.pg import PgCluster
from tests.cluster.processes import CoopProcess
from tests.consent.test_ratelimit import redis_url

LIMIT = 6
READ = "{ viewer { handle } }"


def two_servers(env: dict[str, str], folder: Path) -> Iterator[list[CoopProcess]]:
    servers = [CoopProcess(env, "serve", log_path=folder / f"serve-{i}.log") for i in (1, 2)]
    try:
        for server in servers:
            server.wait_healthy()
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(scope="module")
def env(cluster: PgCluster, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("processes")
    return migrated_env(cluster, folder, COOP_RATE_LIMIT=str(LIMIT))


@pytest.fixture(scope="module")
def web(
    env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[CoopProcess]]:
    yield from two_servers(env, tmp_path_factory.mktemp("web"))


@pytest.fixture(scope="module")
def web_with_redis(
    env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[CoopProcess]]:
    yield from two_servers({**env, "COOP_REDIS_URL": redis_url()}, tmp_path_factory.mktemp("redis"))


async def read_in_turns(servers: list[CoopProcess], token: str, times: int) -> list[httpx.Response]:
    answers = []
    async with httpx.AsyncClient(timeout=30) as http:
        for i in range(times):
            answers.append(
                await http.post(
                    servers[i % 2].base_url + "/graphql",
                    json={"query": READ},
                    headers={"Authorization": f"Bearer {token}"},
                )
            )
    return answers


def assert_one_limit(answers: list[httpx.Response]) -> None:
    assert [a.status_code for a in answers] == [200] * LIMIT + [429] * (len(answers) - LIMIT)
    for refused in answers[LIMIT:]:
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"


async def test_two_processes_share_one_rate_limit_in_postgres(
    web: list[CoopProcess], env: dict[str, str]
) -> None:
    member: Seeded = await seed_member(env)
    assert_one_limit(await read_in_turns(web, member.personal_token, LIMIT + 4))


async def test_concurrent_reads_on_two_processes_spend_one_budget_exactly(
    web: list[CoopProcess], env: dict[str, str]
) -> None:
    """Reads sent all at once, half to each process (each its own pool of connections):
    every one charges the one bucket, none is lost, so exactly LIMIT are served."""
    member: Seeded = await seed_member(env)
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=60) as http:
        answers = await asyncio.gather(
            *(
                http.post(
                    web[i % 2].base_url + "/graphql",
                    json={"query": READ},
                    headers={"Authorization": f"Bearer {member.personal_token}"},
                )
                for i in range(3 * LIMIT)
            )
        )
    # The bucket refills LIMIT tokens a minute: a slow run on a busy machine earns a few more.
    refilled = int((time.monotonic() - started) * LIMIT / 60)
    statuses = [a.status_code for a in answers]
    assert set(statuses) == {200, 429}
    assert LIMIT <= statuses.count(200) <= LIMIT + refilled, statuses
    remaining = {int(a.headers["x-ratelimit-remaining"]) for a in answers if a.is_success}
    assert remaining >= set(range(LIMIT))  # each served read took a token of its own
    for refused in (a for a in answers if a.status_code == 429):
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"


async def test_plain_serve_on_postgres_works_on_the_shared_queue_itself(
    web: list[CoopProcess], env: dict[str, str]
) -> None:
    """Plain `coop serve` keeps working alone: each process runs a queue worker too."""
    import asyncpg

    conn = await asyncpg.connect(
        env["COOP_TEST_DIRECT_URL"].replace("postgres://", "postgresql://", 1)
    )
    try:
        workers = await conn.fetchval("SELECT count(*) FROM procrastinate_workers")
    finally:
        await conn.close()
    assert workers == len(web)


async def test_two_processes_share_one_rate_limit_in_redis(
    web_with_redis: list[CoopProcess], env: dict[str, str]
) -> None:
    member: Seeded = await seed_member(env)
    assert_one_limit(await read_in_turns(web_with_redis, member.personal_token, LIMIT + 4))
