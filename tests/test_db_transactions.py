"""coop's PostgreSQL client keeps transactions safe when queries inside one run together and
one fails (the db-fault flake: asyncpg's "another operation is in progress" raised by the
ROLLBACK while the other query was still running, then a task left bound to a connection
already back in the pool)."""

from __future__ import annotations

import asyncio

import pytest
from tortoise import connections
from tortoise.backends.base.client import TransactionalDBClient
from tortoise.exceptions import OperationalError
from tortoise.transactions import in_transaction

from coop.members.models import LoginThrottle
from coop.types import utcnow


@pytest.fixture
def postgres(engine: str, db: str) -> str:
    if engine != "postgres":
        pytest.skip("the asyncpg client's transactions (SQLite has one connection)")
    return db


async def _slow() -> None:
    await connections.get("default").execute_query("SELECT pg_sleep(0.3)")


async def _failing() -> None:
    await connections.get("default").execute_query("SELECT 1 / 0")


def _idle_everywhere() -> bool:
    pool = connections.get("default")._pool  # type: ignore[attr-defined]
    return bool(pool.get_idle_size() == pool.get_size())


async def test_a_failing_query_beside_a_running_one_rolls_back_with_its_own_error(
    postgres: str,
) -> None:
    with pytest.raises(OperationalError, match="division by zero"):
        async with in_transaction():
            await LoginThrottle.create(key="kept-only-if-committed", window_start=utcnow())
            await asyncio.gather(_failing(), _slow())  # the error leaves while _slow runs
    # The task is no longer bound to the transaction's connection...
    assert not isinstance(connections.get("default"), TransactionalDBClient)
    # ...the rollback happened (nothing of the transaction is kept)...
    assert await LoginThrottle.filter(key="kept-only-if-committed").count() == 0
    # ...and the connection went back to the pool (after the running query ended).
    for _ in range(100):
        if _idle_everywhere():
            break
        await asyncio.sleep(0.02)
    assert _idle_everywhere()
    assert await connections.get("default").execute_query_dict("SELECT 1 AS one") == [{"one": 1}]
