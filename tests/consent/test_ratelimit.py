"""The API rate limit is one limit for the whole cooperative: limiters in different processes
(here: different instances, each with its own memory) draw from the same bucket when it lives
in PostgreSQL or Redis."""

from __future__ import annotations

import os
import secrets
import socket
from urllib.parse import urlsplit

import pytest

from coop.consent.ratelimit import (
    Decision,
    Limiter,
    MemoryLimiter,
    PostgresLimiter,
    RedisLimiter,
    limiter_for,
    purge_idle,
)

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
