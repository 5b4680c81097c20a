"""The access log: one durable row per allowed read, written by natural group commit.

A read does not open its own write transaction. `AccessLogWriter.write` queues a plain row and
waits until it is committed. When no flush is running, the row is flushed at once (on the
next turn of the event loop, so reads started together share it); while a flush is running,
later rows gather and the next flush takes them all. A lone read pays one insert, a busy
server writes hundreds of rows per commit, and there is no fixed delay.

Each flush is ONE multi-row INSERT statement in autocommit (one trip to the database: no
BEGIN/COMMIT hops, no ORM objects). A read is answered only after its row is committed. If a
flush fails, its rows are retried one by one so that only the rows that cannot be written
fail, and the reads waiting on those fail with the error: a read is refused, never served
unlogged, and no row is dropped silently.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from tortoise.backends.base.client import BaseDBAsyncClient, TransactionalDBClient
from tortoise.connection import get_connection

from coop.types import together, utcnow

from .models import AccessLogEntry, Grant

log = logging.getLogger("coop.consent")

MAX_BATCH = 500  # rows per statement (9 parameters each: far below both engines' limits)

_COLUMNS = (
    "id",
    "member_id",
    "grant_id",
    "app_id",
    "app_name",
    "personal_token_id",
    "scope",
    "resource",
    "at",
)
_INSERT = f"INSERT INTO access_log ({', '.join(_COLUMNS)}) "
# PostgreSQL: one statement text for every batch size (arrays of columns, unnested).
_PG_TYPES = ("uuid", "uuid", "uuid", "uuid", "text", "uuid", "text", "text", "timestamptz")
_PG_SQL = (
    _INSERT  # noqa: S608 (constant column names and placeholders, no input)
    + "SELECT * FROM unnest("
    + ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate(_PG_TYPES))
    + ")"
)
_SQLITE_ROW = "(" + ", ".join("?" for _ in _COLUMNS) + ")"
_sqlite_sql: dict[int, str] = {}

# One row: (id, member_id, grant_id, app_id, app_name, personal_token_id, scope, resource, at)
Row = tuple[
    uuid.UUID,
    uuid.UUID,
    uuid.UUID | None,
    uuid.UUID | None,
    str,
    uuid.UUID | None,
    str,
    str,
    datetime,
]


def _root_client() -> tuple[BaseDBAsyncClient, bool]:
    """The default connection outside any transaction, and whether the caller is in one."""
    conn = get_connection("default")
    in_tx = isinstance(conn, TransactionalDBClient)
    while isinstance(conn, TransactionalDBClient):
        conn = conn._parent
    return conn, in_tx


def _statement(conn: BaseDBAsyncClient, rows: list[Row]) -> tuple[str, list[Any]]:
    """One INSERT of every row in `rows`, with its parameters, for `conn`'s dialect."""
    if conn.capabilities.dialect == "postgres":
        return _PG_SQL, [list(column) for column in zip(*rows, strict=True)]
    sql = _sqlite_sql.get(len(rows))
    if sql is None:
        sql = _sqlite_sql[len(rows)] = _INSERT + "VALUES " + ", ".join([_SQLITE_ROW] * len(rows))
    params: list[Any] = []
    for row in rows:
        params.extend(str(v) if isinstance(v, uuid.UUID) else v for v in row)
    return sql, params


async def insert_rows(conn: BaseDBAsyncClient, rows: list[Row]) -> None:
    """Insert `rows` in one statement on `conn` (autocommit, or the caller's transaction)."""
    sql, params = _statement(conn, rows)
    await conn.execute_query(sql, params)


class AccessLogWriter:
    """Natural group commit of access-log rows (one writer per event loop)."""

    def __init__(self, max_batch: int = MAX_BATCH) -> None:
        self.max_batch = max_batch
        self._pending: list[tuple[Row, asyncio.Future[None]]] = []
        self._flushing = False
        self._task: asyncio.Task[None] | None = None
        self.flushes = 0  # statements that committed at least one row

    async def write(self, row: Row) -> None:
        """Return once `row` is committed (or raise if it could not be)."""
        conn, in_tx = _root_client()
        if in_tx:
            # Inside the caller's transaction the row commits (or rolls back) with it;
            # batching here would deadlock SQLite's single connection.
            await insert_rows(get_connection("default"), [row])
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((row, done))
        if not self._flushing:
            self._flushing = True
            self._task = asyncio.get_running_loop().create_task(self._run(conn))
        await done

    async def _run(self, conn: BaseDBAsyncClient) -> None:
        """Flush until nothing is pending (arrivals during a flush join the next one)."""
        batch: list[tuple[Row, asyncio.Future[None]]] = []
        try:
            while self._pending:
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                await self._flush(conn, batch)
        except BaseException:
            # Cancelled (the loop is shutting down): the reads still waiting are refused.
            for _, done in batch + self._pending:
                done.cancel()
            self._pending.clear()
            raise
        finally:
            self._flushing = False
            self._task = None

    async def _flush(
        self, conn: BaseDBAsyncClient, batch: list[tuple[Row, asyncio.Future[None]]]
    ) -> None:
        try:
            await insert_rows(conn, [row for row, _ in batch])
        except Exception as exc:
            log.error("access log flush failed (%s), %d rows", type(exc).__name__, len(batch))
            if len(batch) == 1:
                _settle(batch[0][1], exc)
                return
            # One bad row (say, a member erased mid-read) must not refuse everyone else's
            # reads: write the rows one by one, each read gets its own row's outcome.
            for row, done in batch:
                try:
                    await insert_rows(conn, [row])
                except Exception as one:
                    _settle(done, one)
                else:
                    self.flushes += 1
                    _settle(done, None)
            return
        self.flushes += 1
        for _, done in batch:
            _settle(done, None)


def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    if done.done():  # the waiting read was cancelled: its row is written all the same
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)


_writers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AccessLogWriter] = (
    weakref.WeakKeyDictionary()
)


def writer() -> AccessLogWriter:
    """This event loop's writer."""
    loop = asyncio.get_running_loop()
    found = _writers.get(loop)
    if found is None:
        found = _writers[loop] = AccessLogWriter()
    return found


async def record(
    *,
    member_id: uuid.UUID,
    scope: str,
    resource: str,
    app_name: str,
    grant_id: uuid.UUID | None = None,
    app_id: uuid.UUID | None = None,
    personal_token_id: uuid.UUID | None = None,
    at: datetime | None = None,
) -> None:
    """Durably log one read before it is answered."""
    await writer().write(
        (
            uuid.uuid4(),
            member_id,
            grant_id,
            app_id,
            app_name[:100],
            personal_token_id,
            scope[:100],
            resource[:200],
            at or utcnow(),
        )
    )


@dataclass(frozen=True)
class LogPage:
    entries: list[AccessLogEntry]
    page: int
    has_next: bool


async def list_entries(
    *, member_id: uuid.UUID, app_id: uuid.UUID | None = None, page: int = 1, per_page: int = 50
) -> LogPage:
    """Newest first, optionally one app's reads only."""
    page = max(1, page)
    query = AccessLogEntry.filter(member_id=member_id)
    if app_id is not None:
        query = query.filter(app_id=app_id)
    rows = await query.order_by("-at", "-id").offset((page - 1) * per_page).limit(per_page + 1)
    return LogPage(entries=rows[:per_page], page=page, has_next=len(rows) > per_page)


async def last_access(*, member_id: uuid.UUID) -> dict[uuid.UUID, datetime]:
    """When each of the member's grants was last used (for the apps page and the API). One
    newest-row lookup per grant through the (grant_id, at) index: the cost does not grow with
    the log (an aggregate over the member's rows read every row the retention keeps)."""
    grant_ids = cast(
        list[uuid.UUID], await Grant.filter(member_id=member_id).values_list("id", flat=True)
    )
    found = await together([_newest_read(grant_id) for grant_id in grant_ids])
    return {grant_id: at for grant_id, at in zip(grant_ids, found, strict=True) if at is not None}


async def _newest_read(grant_id: uuid.UUID) -> datetime | None:
    rows = (
        await AccessLogEntry.filter(grant_id=grant_id)
        .order_by("-at")
        .limit(1)
        .values_list("at", flat=True)
    )
    return cast(datetime, rows[0]) if rows else None


async def list_log_apps(*, member_id: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
    """The apps that appear in a member's log (for the filter), by name."""
    rows = (
        await AccessLogEntry.filter(member_id=member_id, app_id__isnull=False)
        .distinct()
        .values_list("app_id", "app_name")
    )
    return sorted({(r[0], r[1]) for r in rows}, key=lambda r: r[1].lower())


PURGE_BATCH = 5000  # rows per DELETE: short statements, no long lock on a busy table


async def purge_older_than(*, days: int, batch: int = PURGE_BATCH) -> int:
    """Delete access-log rows older than `days` (COOP_ACCESS_LOG_RETENTION_DAYS; 0 keeps
    every row). Batched through the index on `at`, oldest first."""
    if days <= 0:
        return 0
    cutoff = utcnow() - timedelta(days=days)
    total = 0
    while True:
        ids = await AccessLogEntry.filter(at__lt=cutoff).limit(batch).values_list("id", flat=True)
        if not ids:
            return total
        total += await AccessLogEntry.filter(id__in=list(ids)).delete()
