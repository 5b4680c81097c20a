"""API rate limits per client (app, member): one limit for the whole cooperative.

`limit` requests per minute, a burst of up to `limit`. Where the counts live decides whether
several processes share them:

- PostgreSQL (the default there): a token bucket per key in one UNLOGGED table, so every web
  process on every machine draws from the same bucket. No extra service to run, and no extra
  round trip: the API's bearer statement (`coop.consent.bearer`) charges the client's bucket
  in the same statement that reads the token (`charge_sql`, an atomic upsert in a
  data-modifying CTE). The table is UNLOGGED: no WAL, and a crash merely refills buckets.
- Redis (`COOP_REDIS_URL`): a moving window kept by the `limits` library, for deployments
  that already run Redis and want those writes off the database.
- SQLite (the embedded default, one process): the bucket in process memory.

Keys are hashed before they are stored, and idle buckets (full again) are purged hourly.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tortoise import connections
from tortoise.exceptions import IntegrityError, OperationalError

log = logging.getLogger("coop.consent.ratelimit")

MAX_KEYS = 100_000
TABLE = "rate_limit_bucket"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # until the bucket is full again
    retry_after: int  # until the next request would be allowed (0 when allowed)

    def headers(self) -> list[tuple[bytes, bytes]]:
        out = [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(self.remaining).encode()),
            (b"x-ratelimit-reset", str(self.reset_seconds).encode()),
        ]
        if not self.allowed:
            out.append((b"retry-after", str(self.retry_after).encode()))
        return out


def bucket_decision(limit: int, tokens: float, allowed: bool) -> Decision:
    """The answer for a token bucket holding `tokens` after this request."""
    rate = limit / 60.0
    missing = limit - tokens
    return Decision(
        allowed=allowed,
        limit=limit,
        remaining=max(0, math.floor(tokens)),
        reset_seconds=math.ceil(missing / rate) if missing > 0 else 0,
        retry_after=0 if allowed else max(1, math.ceil((1.0 - tokens) / rate)),
    )


class Limiter(Protocol):
    limit: int

    async def hit(self, key: str) -> Decision: ...

    async def bearer_charge(self) -> int:
        """The limit the bearer statement should charge in its own round trip (PostgreSQL),
        or 0 when this limiter counts in `hit`."""
        ...

    async def close(self) -> None: ...


class MemoryLimiter:
    """Token buckets in this process's memory (one process: the embedded default)."""

    def __init__(self, limit: int, *, now: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.rate = limit / 60.0
        self._now = now
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    async def hit(self, key: str) -> Decision:
        return self.hit_now(key)

    async def bearer_charge(self) -> int:
        return 0

    async def close(self) -> None:
        return None

    def hit_now(self, key: str) -> Decision:
        now = self._now()
        tokens, last = self._buckets.pop(key, (float(self.limit), now))
        tokens = min(float(self.limit), tokens + (now - last) * self.rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > MAX_KEYS:
            self._buckets.popitem(last=False)  # least recently seen
        return bucket_decision(self.limit, tokens, allowed)


_CREATE = f"""
CREATE UNLOGGED TABLE IF NOT EXISTS {TABLE} (
    key text PRIMARY KEY,
    tokens double precision NOT NULL,
    at timestamptz NOT NULL,
    allowed boolean NOT NULL
)"""
# Refill by the time passed, take one token if there is one, say which. In ON CONFLICT ...
# DO UPDATE, `b.` is the row before this update; a concurrent upsert of the same key waits
# for the row lock and then sees the other's result (no lost update). $2 is the limit and $3
# the refill rate in tokens per second, in every statement below.
_REFILLED = "least($2::float8, b.tokens + extract(epoch FROM now() - b.at) * $3::float8)"
_UPSERT = f"""
INSERT INTO {TABLE} AS b (key, tokens, at, allowed) {{rows}}
ON CONFLICT (key) DO UPDATE SET
    tokens = CASE WHEN {_REFILLED} >= 1 THEN {_REFILLED} - 1 ELSE {_REFILLED} END,
    allowed = {_REFILLED} >= 1,
    at = now()
RETURNING key, tokens, allowed"""
_HIT = _UPSERT.format(rows="VALUES ($1, $2::float8 - 1, now(), true)")
# Gives back the token a charge took for a request that was then refused (never above the
# limit: the bucket ends as if that request had not been charged).
_REFUND = f"UPDATE {TABLE} SET tokens = least($2::float8, tokens + 1) WHERE key = $1"  # noqa: S608


def key_sql(key: str) -> str:
    """SQL for `stored_key` of the text expression `key` (PostgreSQL)."""
    return f"left(encode(sha256(convert_to({key}, 'UTF8')), 'hex'), 32)"


def charge_sql(*, key: str, source: str) -> str:
    """An upsert charging one request to the bucket of each row of `source` (a FROM item,
    say a CTE), keyed by the text expression `key` (as `Principal.rate_key` spells it);
    RETURNING key (the stored key), tokens, allowed. For a data-modifying CTE in a statement
    whose parameters $2 and $3 are `charge_params`."""
    rows = f"SELECT {key_sql(key)}, $2::float8 - 1, now(), true FROM {source}"  # noqa: S608
    return _UPSERT.format(rows=rows)


def charge_params(limit: int) -> list[object]:
    """The parameters $2 (limit) and $3 (rate) of `charge_sql` for this limit."""
    return [float(limit), limit / 60.0]


async def charged_rows(sql: str, params: Sequence[object]) -> list[dict[str, Any]]:
    """The rows of a statement that embeds `charge_sql` (PostgreSQL). It runs in autocommit
    on the pool: the charge is committed with the statement, its row lock held no longer."""
    return list(await connections.get("default").execute_query_dict(sql, list(params)))


async def refund(stored: str, limit: int) -> None:
    """Give back the token a charge took from the bucket `stored` (a `stored_key`) for a
    request that was refused after all; the bucket ends as if it had not been charged."""
    await connections.get("default").execute_query(_REFUND, [stored, float(limit)])


def stored_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:32]


class PostgresLimiter:
    """Token buckets in PostgreSQL, shared by every process of the cooperative."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._ready = False

    async def _ensure_table(self) -> None:
        with contextlib.suppress(IntegrityError):  # another process made it at the same time
            await connections.get("default").execute_script(_CREATE)
        self._ready = True

    async def hit(self, key: str) -> Decision:
        if not self._ready:
            await self._ensure_table()
        params = [stored_key(key), *charge_params(self.limit)]
        rows = await connections.get("default").execute_query_dict(_HIT, params)
        row = rows[0]
        return bucket_decision(self.limit, float(row["tokens"]), bool(row["allowed"]))

    async def bearer_charge(self) -> int:
        """The bearer statement charges the bucket (the table exists from here on)."""
        if not self._ready:
            await self._ensure_table()
        return self.limit

    async def close(self) -> None:
        return None


class RedisLimiter:
    """A moving window per key in Redis, through the `limits` library."""

    def __init__(self, limit: int, url: str, *, timeout: float = 1.0) -> None:
        from limits import RateLimitItemPerMinute
        from limits.aio.storage import RedisStorage
        from limits.aio.strategies import MovingWindowRateLimiter
        from redis.asyncio import Redis

        self.limit = limit
        self._item = RateLimitItemPerMinute(limit)
        # Our own client: bounded waits (a Redis that hangs must not hang the API) and a
        # pool this limiter can close.
        self._client = Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        storage = RedisStorage(
            url,
            implementation="redispy",
            connection_pool=self._client.connection_pool,  # type: ignore[arg-type]
        )
        self._strategy = MovingWindowRateLimiter(storage)

    async def close(self) -> None:
        await self._client.aclose()

    async def bearer_charge(self) -> int:
        return 0

    async def hit(self, key: str) -> Decision:
        name = stored_key(key)
        try:
            allowed = await self._strategy.hit(self._item, "coop", name)
            stats = await self._strategy.get_window_stats(self._item, "coop", name)
        except Exception as exc:  # Redis away: serve unlimited rather than not at all
            log.warning("rate limit store unavailable", extra={"error": type(exc).__name__})
            return Decision(True, self.limit, self.limit, 0, 0)
        wait = max(0, math.ceil(stats.reset_time - time.time()))
        return Decision(
            allowed=allowed,
            limit=self.limit,
            remaining=max(0, int(stats.remaining)),
            reset_seconds=wait,
            retry_after=0 if allowed else max(1, wait),
        )


def limiter_for(*, limit: int, shared: bool, redis_url: str | None) -> Limiter | None:
    """The limiter for these settings; None when limiting is off (`limit == 0`)."""
    if limit <= 0:
        return None
    if redis_url:
        return RedisLimiter(limit, redis_url)
    if shared:
        return PostgresLimiter(limit)
    return MemoryLimiter(limit)


async def purge_idle(*, older_than_seconds: int = 120) -> int:
    """Delete PostgreSQL buckets untouched for a while (they are full again anyway)."""
    conn = connections.get("default")
    if conn.capabilities.dialect != "postgres":
        return 0
    sql = f"DELETE FROM {TABLE} WHERE at < now() - make_interval(secs => $1)"  # noqa: S608
    try:
        count, _ = await conn.execute_query(sql, [float(older_than_seconds)])
    except OperationalError:  # no API request has created the table yet
        return 0
    return int(count)


__all__ = [
    "Decision",
    "Limiter",
    "MemoryLimiter",
    "PostgresLimiter",
    "RedisLimiter",
    "bucket_decision",
    "charge_params",
    "charge_sql",
    "charged_rows",
    "limiter_for",
    "purge_idle",
    "refund",
    "stored_key",
]
