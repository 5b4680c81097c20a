"""The API rate limit is one limit for the whole cooperative: limiters in different processes
(here: different instances, each with its own memory) draw from the same bucket when it lives
in PostgreSQL or Redis. On PostgreSQL the bearer statement charges that bucket itself (no
round trip of its own): the same bucket, no charge lost under concurrency, none kept for a
token the decision refuses."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from tortoise import connections

from coop.consent import grants
from coop.consent.bearer import Principal, resolve_bearer
from coop.consent.models import OAuthToken
from coop.consent.personal import PAT_PREFIX
from coop.consent.ratelimit import (
    TABLE,
    Decision,
    Limiter,
    MemoryLimiter,
    PostgresLimiter,
    RedisLimiter,
    limiter_for,
    purge_idle,
)
from coop.consent.tokens import ACCESS_PREFIX, token_hash
from coop.types import utcnow
from coop.vault import Vault
from tests.api.factories import grant_token, make_app, make_member, personal_token

REDIS_URL = os.environ.get("COOP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_url() -> str:
    parts = urlsplit(REDIS_URL)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 1).close()
    except OSError:
        pytest.skip(f"no Redis at {REDIS_URL} (.ci/run starts one)")
    return REDIS_URL


async def take_turns(one: Limiter, other: Limiter, key: str, times: int) -> list[Decision]:
    try:
        return [await (one if i % 2 == 0 else other).hit(key) for i in range(times)]
    finally:
        await one.close()
        await other.close()


def assert_one_limit_of_three(decisions: list[Decision]) -> None:
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert [d.remaining for d in decisions[:3]] == [2, 1, 0]
    refused = decisions[3]
    assert refused.retry_after >= 1
    assert (b"retry-after", str(refused.retry_after).encode()) in refused.headers()


async def test_postgres_buckets_are_shared_by_every_process(db: str, engine: str) -> None:
    if engine != "postgres":
        pytest.skip("the shared bucket lives in PostgreSQL")
    key = f"app:{secrets.token_hex(8)}"
    decisions = await take_turns(PostgresLimiter(3), PostgresLimiter(3), key, 5)
    assert_one_limit_of_three(decisions)
    assert (await PostgresLimiter(3).hit(f"other:{key}")).allowed  # keys are independent
    assert await purge_idle(older_than_seconds=0) >= 2


async def test_redis_windows_are_shared_by_every_process() -> None:
    url = redis_url()
    key = f"app:{secrets.token_hex(8)}"
    decisions = await take_turns(RedisLimiter(3, url), RedisLimiter(3, url), key, 5)
    assert_one_limit_of_three(decisions)


async def test_memory_buckets_are_per_process() -> None:
    key = "app:member"
    decisions = await take_turns(MemoryLimiter(3), MemoryLimiter(3), key, 5)
    assert all(d.allowed for d in decisions)  # why SQLite's single process is the only user


async def test_the_store_follows_the_settings() -> None:
    assert limiter_for(limit=0, shared=True, redis_url=REDIS_URL) is None
    assert isinstance(limiter_for(limit=5, shared=False, redis_url=None), MemoryLimiter)
    assert isinstance(limiter_for(limit=5, shared=True, redis_url=None), PostgresLimiter)
    redis = limiter_for(limit=5, shared=True, redis_url=REDIS_URL)
    assert isinstance(redis, RedisLimiter)
    await redis.close()


# -- the PostgreSQL bucket charged by the bearer statement (no round trip of its own) --------


def postgres_only(engine: str) -> None:
    if engine != "postgres":
        pytest.skip("the bearer statement charges the bucket on PostgreSQL only")


async def charged(token: str, limit: int = 3) -> Principal | None:
    await PostgresLimiter(limit).bearer_charge()  # the table exists from here on
    return await resolve_bearer(token, rate_limit=limit)


async def charged_decision(token: str, limit: int = 3) -> Decision:
    principal = await charged(token, limit)
    assert principal is not None and principal.rate is not None
    return principal.rate


async def test_the_bearer_statement_and_the_limiter_draw_from_one_bucket(
    db: str, engine: str, vault: Vault
) -> None:
    """An app's token and a personal token: charged by the bearer statement in one process,
    by `PostgresLimiter.hit` in another (an older process, say), one limit for both."""
    postgres_only(engine)
    member = await make_member(vault)
    app = await grant_token(member, await make_app(vault), ["score:reach"])
    for token in (app.access_token, await personal_token(member, ["profile"])):
        principal = await resolve_bearer(token)
        assert principal is not None and principal.rate is None  # not charged unless asked
        limiter = PostgresLimiter(3)
        decisions = [
            await charged_decision(token) if i % 2 == 0 else await limiter.hit(principal.rate_key)
            for i in range(5)
        ]
        assert_one_limit_of_three(decisions)


async def test_concurrent_reads_on_several_connections_lose_no_charge(
    db: str, engine: str, vault: Vault
) -> None:
    postgres_only(engine)
    member = await make_member(vault)
    app = await grant_token(member, await make_app(vault), ["score:reach"])
    await PostgresLimiter(3).bearer_charge()
    # More reads than the pool has connections, all at once: each waits for the bucket row.
    decisions = await asyncio.gather(
        *(resolve_bearer(app.access_token, rate_limit=3) for _ in range(24))
    )
    rates = [p.rate for p in decisions if p is not None and p.rate is not None]
    assert len(rates) == 24
    assert sorted(d.remaining for d in rates if d.allowed) == [0, 1, 2]
    assert all(d.retry_after >= 1 for d in rates if not d.allowed)


async def test_a_token_refused_after_its_charge_gives_the_charge_back(
    db: str, engine: str, vault: Vault
) -> None:
    """Refused tokens are not counted (as when the limit was checked after the decision): an
    expired token and a paused grant cost the app nothing of its budget for when it may
    read again, and a revoked token is not even charged (no write)."""
    postgres_only(engine)
    member = await make_member(vault)
    app = await grant_token(member, await make_app(vault), ["score:reach"])
    tokens = OAuthToken.filter(access_hash=token_hash(app.access_token))
    later = utcnow() + timedelta(days=1)

    await tokens.update(access_expires_at=utcnow() - timedelta(seconds=1))
    assert [await charged(app.access_token) for _ in range(5)] == [None] * 5
    await tokens.update(access_expires_at=later)
    await grants.pause_grant(member_id=member.id, grant_id=app.grant_id)
    assert [await charged(app.access_token) for _ in range(5)] == [None] * 5
    await grants.resume_grant(member_id=member.id, grant_id=app.grant_id)
    assert_one_limit_of_three([await charged_decision(app.access_token) for _ in range(5)])

    await tokens.update(revoked_at=utcnow())
    rows_before = await bucket_rows()
    assert [await charged(app.access_token) for _ in range(5)] == [None] * 5
    assert await bucket_rows() == rows_before


async def bucket_rows() -> list[dict[str, object]]:
    conn = connections.get("default")
    return list(await conn.execute_query_dict(f"SELECT * FROM {TABLE} ORDER BY key"))  # noqa: S608


async def test_no_token_no_charge(db: str, engine: str) -> None:
    postgres_only(engine)
    assert await charged(ACCESS_PREFIX + "x" * 40) is None
    assert await charged(PAT_PREFIX + "x" * 40) is None
    assert await bucket_rows() == []


async def test_sqlite_ignores_the_charge_and_the_endpoint_counts_in_memory(
    db: str, engine: str, vault: Vault
) -> None:
    if engine != "sqlite":
        pytest.skip("SQLite: the bucket lives in the process's memory")
    member = await make_member(vault)
    token = await personal_token(member, ["profile"])
    principal = await resolve_bearer(token, rate_limit=3)
    assert principal is not None and principal.rate is None
    assert await MemoryLimiter(3).bearer_charge() == 0
