"""The access log: one durable row per allowed read, written by group commit.

A read does not open its own write transaction. `AccessLogWriter.write` appends the entry to
the current batch and waits until that batch is committed; the first entry of a batch arms a
timer (`delay`, a few milliseconds) after which one transaction inserts every entry gathered
meanwhile. Under load, hundreds of reads share one commit; a lone read waits `delay` longer.
A read is answered only after its log entry is durable, and a failed flush fails the reads
of that batch (they are refused, never served unlogged).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import weakref
from dataclasses import dataclass, field
from datetime import datetime

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient, TransactionalDBClient

from coop.types import utcnow

from .models import AccessLogEntry

log = logging.getLogger("coop.consent")

DEFAULT_DELAY = 0.003
MAX_BATCH = 500


@dataclass
class _Batch:
    done: asyncio.Future[None]
    entries: list[AccessLogEntry] = field(default_factory=list)
    started: bool = False


def _root_client() -> tuple[BaseDBAsyncClient, bool]:
    """The default connection outside any transaction, and whether the caller is in one."""
    conn = connections.get("default")
    in_tx = isinstance(conn, TransactionalDBClient)
    while isinstance(conn, TransactionalDBClient):
        conn = conn._parent
    return conn, in_tx


class AccessLogWriter:
    """Group commit of access-log entries (one writer per event loop)."""

    def __init__(self, delay: float = DEFAULT_DELAY, max_batch: int = MAX_BATCH) -> None:
        self.delay = delay
        self.max_batch = max_batch
        self._batch: _Batch | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.flushes = 0

    async def write(self, entry: AccessLogEntry) -> None:
        _, in_tx = _root_client()
        if in_tx:
            # Inside the caller's transaction the entry commits (or rolls back) with it;
            # batching here would deadlock SQLite's single connection.
            await entry.save(force_create=True)
            return
        batch = self._batch
        loop = asyncio.get_running_loop()
        if batch is None:
            batch = self._batch = _Batch(loop.create_future())
            loop.call_later(self.delay, self._start, batch)
        batch.entries.append(entry)
        if len(batch.entries) >= self.max_batch:
            self._start(batch)
        await asyncio.shield(batch.done)

    def _start(self, batch: _Batch) -> None:
        if batch.started:
            return
        batch.started = True
        if self._batch is batch:
            self._batch = None
        task = asyncio.get_running_loop().create_task(self._flush(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush(self, batch: _Batch) -> None:
        try:
            root, _ = _root_client()
            async with root._in_transaction() as tx:
                await AccessLogEntry.bulk_create(batch.entries, using_db=tx)
            self.flushes += 1
        except Exception as exc:
            log.error("access log flush failed (%s)", type(exc).__name__)
            if not batch.done.done():
                batch.done.set_exception(exc)
            return
        if not batch.done.done():
            batch.done.set_result(None)


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
    entry = AccessLogEntry(
        id=uuid.uuid4(),
        member_id=member_id,
        grant_id=grant_id,
        app_id=app_id,
        app_name=app_name[:100],
        personal_token_id=personal_token_id,
        scope=scope[:100],
        resource=resource[:200],
        at=at or utcnow(),
    )
    await writer().write(entry)


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
    """When each grant was last used (for the apps page)."""
    from tortoise.functions import Max

    rows = (
        await AccessLogEntry.filter(member_id=member_id, grant_id__isnull=False)
        .annotate(last=Max("at"))
        .group_by("grant_id")
        .values("grant_id", "last")
    )
    return {row["grant_id"]: row["last"] for row in rows}


async def list_log_apps(*, member_id: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
    """The apps that appear in a member's log (for the filter), by name."""
    rows = (
        await AccessLogEntry.filter(member_id=member_id, app_id__isnull=False)
        .distinct()
        .values_list("app_id", "app_name")
    )
    return sorted({(r[0], r[1]) for r in rows}, key=lambda r: r[1].lower())
