"""coop's PostgreSQL pool hands connections back without a reset statement (one round trip
less per query outside a transaction), and still never hands out a connection inside a
transaction."""

from __future__ import annotations

from typing import Any

import pytest
from tortoise import connections

from coop import db


@pytest.fixture
def pool(engine: str, db: str) -> Any:
    if engine != "postgres":
        pytest.skip("the asyncpg pool (SQLite has one connection)")
    return connections.get("default")._pool  # type: ignore[attr-defined]


async def test_a_released_connection_costs_no_reset_statement(pool: Any) -> None:
    seen: list[str] = []
    async with pool.acquire() as conn:
        conn.add_query_logger(lambda record: seen.append(record.query))
        await conn.execute("SELECT 1")
    # asyncpg's default reset would have run "SELECT pg_advisory_unlock_all(); CLOSE ALL;
    # UNLISTEN *; RESET ALL" here, on release.
    assert seen == ["SELECT 1"]


async def test_a_connection_released_inside_a_transaction_comes_back_rolled_back(
    pool: Any,
) -> None:
    async with pool.acquire() as conn:
        await conn.execute("BEGIN")
        await conn.execute("CREATE TEMP TABLE left_open (x int)")
        await conn.execute("INSERT INTO left_open VALUES (1)")
        backend = await conn.fetchval("SELECT pg_backend_pid()")
    # Every connection the pool hands out now (the same one among them) is outside any
    # transaction, and the released one's uncommitted work is gone.
    size = pool.get_size()
    held = [await pool.acquire() for _ in range(size)]
    try:
        for conn in held:
            assert not conn.is_in_transaction()
            if await conn.fetchval("SELECT pg_backend_pid()") == backend:
                assert await conn.fetchval("SELECT to_regclass('pg_temp.left_open')") is None
        assert backend in [await c.fetchval("SELECT pg_backend_pid()") for c in held]
    finally:
        for conn in held:
            await pool.release(conn)


async def test_reads_outside_transactions_still_work_after_many_releases(pool: Any) -> None:
    for n in range(20):
        rows = await db.read_rows("SELECT $1::int AS n", [n])
        assert rows[0]["n"] == n
