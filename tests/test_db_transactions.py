"""coop's transaction clients keep a transaction sound when tasks share it.

PostgreSQL: queries inside one transaction run together and one fails (the db-fault flake:
asyncpg's "another operation is in progress" raised by the ROLLBACK while the other query was
still running, then a task left bound to a connection already back in the pool). Both
engines: tasks that each open a nested transaction (a savepoint), and a task that outlives
its transaction (coop.db.TransactionGate; CONTRIBUTING.md, "Transactions")."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from tortoise import connections
from tortoise.backends.base.client import TransactionalDBClient
from tortoise.exceptions import OperationalError, TransactionManagementError
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


# -- nested transactions (savepoints) of tasks that share one transaction ---------------------
#
# Savepoints nest as a stack: `ROLLBACK TO a` undoes everything after `SAVEPOINT a`, and
# `RELEASE a` releases every savepoint opened after it, whoever opened them. Two tasks of one
# transaction that each open a nested `in_transaction()` must therefore not interleave.

# How long one task gives a sibling to run inside its nested block. With the gate the sibling
# cannot (it waits for the block to end), so the wait runs out; without it the sibling's few
# statements take milliseconds. Nothing is asserted about time.
SIBLING_CHANCE = 1.0


class Boom(Exception):
    pass


async def _keys() -> set[str]:
    return set(await LoginThrottle.all().values_list("key", flat=True))


async def _throttle(key: str) -> None:
    await LoginThrottle.create(key=key, window_start=utcnow())


async def _give_way(event: asyncio.Event) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), SIBLING_CHANCE)


async def test_a_nested_rollback_keeps_a_concurrent_siblings_released_block(db: str) -> None:
    b_done = asyncio.Event()

    async def a() -> None:
        with pytest.raises(Boom):
            async with in_transaction():
                await _throttle("a")
                await _give_way(b_done)  # b's block runs (and is released) meanwhile...
                raise Boom  # ...and this rollback must undo a's row only

    async def b() -> None:
        async with in_transaction():
            await _throttle("b")
        b_done.set()

    async with in_transaction():
        await asyncio.gather(a(), b())
    assert await _keys() == {"b"}


async def test_a_nested_release_does_not_swallow_a_concurrent_siblings_rollback(db: str) -> None:
    b_inside, a_released = asyncio.Event(), asyncio.Event()

    async def a() -> None:
        async with in_transaction():
            await _throttle("a")
            await _give_way(b_inside)
        a_released.set()  # released: must not have released b's open block with it

    async def b() -> None:
        with pytest.raises(Boom):  # its own error, not "no such savepoint"
            async with in_transaction():
                await _throttle("b")
                b_inside.set()
                await a_released.wait()
                raise Boom

    async with in_transaction():
        await asyncio.gather(a(), b())
    assert await _keys() == {"a"}


async def test_a_statement_beside_a_failing_nested_block_is_not_rolled_back_with_it(
    db: str,
) -> None:
    plain_done = asyncio.Event()

    async def nested() -> None:
        with pytest.raises(Boom):
            async with in_transaction():
                await _throttle("nested")
                await _give_way(plain_done)
                raise Boom

    async def plain() -> None:
        await _throttle("plain")
        plain_done.set()

    async with in_transaction():
        await asyncio.gather(nested(), plain())
    assert await _keys() == {"plain"}


async def test_tasks_started_inside_a_nested_block_belong_to_it(db: str) -> None:
    async def inner(key: str) -> None:
        async with in_transaction():  # a savepoint inside the block's savepoint
            await _throttle(key)

    async with in_transaction():
        await _throttle("outer")
        with pytest.raises(Boom):
            async with in_transaction():
                await asyncio.gather(_throttle("one"), _throttle("two"), inner("three"))
                assert await _keys() == {"outer", "one", "two", "three"}
                raise Boom
    assert await _keys() == {"outer"}


async def test_concurrent_nested_blocks_that_succeed_all_commit(db: str) -> None:
    async def block(key: str) -> None:
        async with in_transaction():
            await _throttle(key)
            await _throttle(key + "-2")

    async with in_transaction():
        await asyncio.gather(*(block(k) for k in "abcd"))
    assert await _keys() == {k + s for k in "abcd" for s in ("", "-2")}


async def test_a_task_that_outlives_its_transaction_cannot_use_it(db: str) -> None:
    started = asyncio.Event()

    async def straggler() -> None:
        started.set()
        await asyncio.sleep(0)  # the transaction commits meanwhile
        await _throttle("late")

    async with in_transaction():
        task = asyncio.get_running_loop().create_task(straggler())
        await started.wait()
    with pytest.raises(TransactionManagementError, match="has ended"):
        await task
    assert await _keys() == set()


async def test_a_nested_block_cancelled_again_while_it_closes_does_not_hold_up_the_others(
    db: str,
) -> None:
    holding, let_go = asyncio.Event(), asyncio.Event()

    async def cancelled_in_a_block() -> None:
        async with in_transaction() as nested:

            async def child() -> None:  # started inside the block: holds the connection
                async with nested.acquire_connection():
                    holding.set()
                    await let_go.wait()

            child_task = asyncio.get_running_loop().create_task(child())
            await asyncio.sleep(3600)
        await child_task

    async with asyncio.timeout(30), in_transaction():  # a hang fails instead of waiting
        task = asyncio.get_running_loop().create_task(cancelled_in_a_block())
        await holding.wait()
        task.cancel()  # leaves the block, whose close waits for the child's turn...
        for _ in range(5):
            await asyncio.sleep(0)
        task.cancel()  # ...and is cancelled again there
        with pytest.raises(asyncio.CancelledError):
            await task
        let_go.set()
        await _throttle("after")  # the block no longer stands in the way
    assert await _keys() == {"after"}
