"""Database infrastructure: the tortoise configuration, migrations and schema checks."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import os
import sqlite3
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

import asyncpg
from tortoise import Tortoise
from tortoise.backends.asyncpg.client import AsyncpgDBClient, TransactionWrapper
from tortoise.backends.base.client import (
    ConnectionWrapper,
    TransactionalDBClient,
    TransactionContext,
    TransactionContextPooled,
)
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.connection import connections as tortoise_connections
from tortoise.connection import get_connection
from tortoise.exceptions import DBConnectionError, OperationalError, TransactionManagementError
from tortoise.migrations.api import migrate as tortoise_migrate

from coop.config import Settings

APP_LABEL = "models"

# Every module holding tortoise models. Order does not matter; the migration autodetector
# compares the union with coop/migrations.
MODEL_MODULES = [
    "coop.vault.models",
    "coop.members.models",
    "coop.apps.models",
    "coop.consent.models",
    "coop.connectors.models",
    "coop.connectors.oauth_models",
    "coop.portability.models",
    "coop.scoring.models",
    "coop.governance.models",
]

# SQLite: WAL (tortoise's default) lets readers run beside the writer, busy_timeout turns
# cross-process lock contention into a short wait instead of "database is locked",
# secure_delete overwrites freed pages so erased ciphertext does not linger in the file, and
# synchronous=FULL makes every commit reach the disk before it returns: an access-log entry
# (answered reads), a revocation or a destroyed key must survive a power loss, which
# NORMAL (WAL's usual pairing) does not promise.
SQLITE_PRAGMAS = {
    "journal_mode": "WAL",
    "busy_timeout": "10000",
    "secure_delete": "ON",
    "synchronous": "FULL",
    "foreign_keys": "ON",
}


def normalise_url(url: str) -> str:
    """Return a tortoise URL, adding coop's SQLite pragmas and accepting `postgresql://`."""
    if url.startswith("postgresql://"):
        url = "postgres://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite://") and url != "sqlite://:memory:":
        parts = urlsplit(url)
        given = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
        pragmas = {**SQLITE_PRAGMAS, **given}
        path = url.split("?", 1)[0]
        url = f"{path}?{urlencode(pragmas)}"
    return url


def _connection(settings: Settings, db_url: str, *, long_statements: bool) -> dict[str, Any]:
    """SQLite: coop's client (coop/sqlite.py) with the URL's pragmas. PostgreSQL: coop's
    client (below) with the timeouts of LD-02/LD-03: connecting, waiting for a pooled
    connection and running one statement are all bounded, so a database that is down or
    hangs answers within seconds instead of never. Both gate their transactions
    (TransactionGate)."""
    if db_url.startswith("sqlite:"):
        return {**expand_db_url(db_url), "engine": "coop.sqlite"}
    credentials = expand_db_url(db_url)["credentials"]
    server_settings = dict(credentials.pop("server_settings", None) or {})
    # Migrations may build indexes over millions of rows: no statement bound for them.
    statement = 0.0 if long_statements else settings.db_statement_timeout
    server_settings.setdefault("statement_timeout", str(int(statement * 1000)))
    server_settings.setdefault("idle_in_transaction_session_timeout", str(int(statement * 2000)))
    return {
        "engine": "coop.db",
        "credentials": {
            "maxsize": settings.db_pool_size,
            **credentials,
            "server_settings": server_settings,
            "timeout": settings.db_connect_timeout,
            # The client-side bound catches what the server-side one cannot: a network that
            # swallows packets (no answer ever comes back to say the statement was cancelled).
            "command_timeout": statement + 1.0 if statement else None,
            "acquire_timeout": settings.db_acquire_timeout,
        },
    }


def tortoise_config(
    settings: Settings, *, url: str | None = None, long_statements: bool = False
) -> dict[str, Any]:
    """The one tortoise configuration used by the server, the CLI and the tests."""
    db_url = normalise_url(url or settings.database_url)
    connection = _connection(settings, db_url, long_statements=long_statements)
    return {
        "connections": {"default": connection},
        "apps": {
            APP_LABEL: {
                "models": MODEL_MODULES,
                "default_connection": "default",
                "migrations": "coop.migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def sqlite_path(settings: Settings) -> Path | None:
    """The SQLite database file of `settings` (None for PostgreSQL or an in-memory one)."""
    if not settings.is_sqlite:
        return None
    path = settings.database_url.removeprefix("sqlite://").split("?", 1)[0]
    return None if path == ":memory:" else Path(path)


def sqlite_sidecars(path: Path) -> list[Path]:
    """The files SQLite keeps beside a database: WAL, shared memory, rollback journal."""
    return [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal")]


def make_private_sqlite(path: Path) -> None:
    """Create the SQLite file 0600 before SQLite opens it, so SQLite creates its -wal, -shm
    and -journal files 0600 too (it gives them the database file's mode, whatever the
    umask); narrow to 0600 any of them an older coop left readable."""
    # O_EXCL: never open (and close) a database file that exists. Closing any descriptor of
    # a file drops every POSIX lock this process holds on it, so doing that while SQLite has
    # the database open here would silently release SQLite's own locks (stale reads, "disk
    # I/O error"). A file that exists is only narrowed with chmod, which touches no lock.
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    for file in (path, *sqlite_sidecars(path)):
        with contextlib.suppress(FileNotFoundError):
            file.chmod(0o600)


def ensure_data_dir(settings: Settings) -> None:
    """Create the data directory (mode 0700: it holds keys and the SQLite file) and the
    SQLite file (mode 0600)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    db_path = sqlite_path(settings)
    if db_path is not None:
        db_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        make_private_sqlite(db_path)


async def migrate(settings: Settings) -> None:
    """Apply every pending migration (used by `coop migrate` and at server start)."""
    ensure_data_dir(settings)
    try:
        await tortoise_migrate(config=tortoise_config(settings, long_statements=True))
    finally:
        await Tortoise.close_connections()


def db_kind() -> str:
    """'sqlite' or 'postgres' for the active default connection."""
    dialect = get_connection("default").capabilities.dialect
    return "postgres" if dialect == "postgres" else dialect


class Row(Protocol):
    """A row of a raw read: its columns by name (sqlite3.Row or asyncpg's record dict)."""

    def __getitem__(self, key: str, /) -> Any: ...


_readers: dict[str, sqlite3.Connection] = {}


def _sqlite_reader(filename: str) -> sqlite3.Connection:
    """A read-only autocommit connection to the database file (one per file and process)."""
    reader = _readers.get(filename)
    if reader is None:
        reader = sqlite3.connect(
            f"file:{filename}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
        )
        reader.row_factory = sqlite3.Row
        reader.execute("PRAGMA query_only = ON")
        _readers[filename] = reader
    return reader


def close_readers() -> None:
    for reader in _readers.values():
        reader.close()
    _readers.clear()


def placeholder(index: int) -> str:
    """The `index`th (1-based) parameter marker of the active connection's dialect."""
    return f"${index}" if db_kind() == "postgres" else "?"


async def read_rows(sql: str, params: Sequence[object]) -> list[Row]:
    """The rows of one raw read of committed data (write `sql` with `placeholder`).

    For the hot paths where tortoise's query building costs more than the query. On SQLite
    the statement runs on a separate read-only connection on the event loop's thread:
    tortoise funnels every query through one connection behind a lock, so a read would
    otherwise queue behind the access log's group-commit transaction, while WAL lets a second
    connection read committed data at any time in microseconds. On PostgreSQL: the pool.
    """
    return await _read(get_connection("default"), sql, params)


def _reader_for(conn: Any) -> sqlite3.Connection | None:
    """The read-only connection beside `conn`'s SQLite file (None: PostgreSQL or in-memory)."""
    filename = getattr(conn, "filename", ":memory:")
    if conn.capabilities.dialect == "sqlite" and filename != ":memory:":
        return _sqlite_reader(filename)
    return None


async def _read(conn: Any, sql: str, params: Sequence[object]) -> list[Row]:
    reader = _reader_for(conn)
    if reader is not None:
        return reader.execute(sql, params).fetchall()
    return list(await conn.execute_query_dict(sql, list(params)))


async def ping() -> None:
    """Raise unless the database answers a read (for /healthz).

    On SQLite through the read-only connection: WAL lets it read beside a long write
    transaction, which tortoise's one connection would make it queue behind. It reads the
    schema, not `SELECT 1` (which never opens the file), so a database file that is gone or is
    not a database fails. On PostgreSQL: a pooled connection, as every other query."""
    conn = get_connection("default")
    if _reader_for(conn) is not None:
        await _read(conn, "SELECT count(*) FROM sqlite_master", ())
    else:
        await conn.execute_query("SELECT 1")


def as_uuid(value: object) -> uuid.UUID:
    """A UUID column of a raw read (SQLite gives its text)."""
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def as_datetime(value: object) -> datetime:
    """A datetime column of a raw read (SQLite gives the ISO text tortoise stored)."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


_dialect_sql: dict[tuple[str, str], str] = {}


async def read(template: str, *params: object) -> list[Row]:
    """`read_rows` of `template`, whose parameter markers are `{1}`, `{2}`… (on SQLite in
    order), written for the active dialect once per template; UUID parameters are passed
    as the engine compares them (text on SQLite)."""
    conn = get_connection("default")
    kind = "postgres" if conn.capabilities.dialect == "postgres" else "sqlite"
    sql = _dialect_sql.get((template, kind))
    if sql is None:
        markers = [f"${i}" if kind == "postgres" else "?" for i in range(template.count("{") + 1)]
        sql = _dialect_sql[(template, kind)] = template.format(*markers)
    if kind == "sqlite":
        params = tuple(str(p) if isinstance(p, uuid.UUID) else p for p in params)
    return await _read(conn, sql, params)


# Column values of a raw read as the ORM would give them: SQLite hands back text for UUIDs,
# datetimes and JSON and integers for booleans; PostgreSQL (asyncpg) the Python types, but
# JSON as text.


def as_time(value: object) -> datetime | None:
    """A timestamp column (stored in UTC, with its offset) as an aware datetime."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def as_strings(value: object) -> list[str]:
    """A JSON array column of strings (anything else: empty)."""
    data = json.loads(value) if isinstance(value, str | bytes) else value
    return [str(item) for item in data] if isinstance(data, list) else []


async def read_tuples(sql: str, params: Sequence[object]) -> list[Sequence[Any]]:
    """`read_rows` for reads of many rows: each row a sequence in the SELECT's column order
    (a plain tuple on SQLite, asyncpg's Record on PostgreSQL; no dict built per row)."""
    conn = get_connection("default")
    reader = _reader_for(conn)
    if reader is not None:
        cursor = reader.cursor()
        cursor.row_factory = None  # tuples: no sqlite3.Row around each one
        return cursor.execute(sql, params).fetchall()
    result: tuple[int, Sequence[Any]] = await conn.execute_query(sql, list(params))
    return list(result[1])


async def _migration_writers(settings: Settings) -> list[Any]:
    from tortoise.context import TortoiseContext
    from tortoise.migrations.autodetector import MigrationAutodetector

    config = tortoise_config(settings, url="sqlite://:memory:")
    async with TortoiseContext() as ctx:
        await ctx.init(config=config)
        assert ctx.apps is not None
        writers: list[Any] = await MigrationAutodetector(ctx.apps, config["apps"]).changes()
    return writers


async def pending_model_changes(settings: Settings) -> list[str]:
    """Names of the migrations the models need but coop/migrations lacks (empty = in sync)."""
    return [writer.name for writer in await _migration_writers(settings)]


async def make_migrations(settings: Settings, name: str | None = None) -> list[Path]:
    """Write migration files for model changes (a developer command: `coop makemigrations`)."""
    from tortoise.migrations.writer import format_migration_name

    paths = []
    for writer in await _migration_writers(settings):
        if name:
            writer.name = format_migration_name(int(writer.name.split("_", 1)[0]), name)
        paths.append(Path(writer.write()))
    return paths


# -- database faults (LD-02, LD-03) ---------------------------------------------------------

# Errors that mean "the database cannot be reached or did not answer in time", not "this
# request is wrong": refused or reset connections, timeouts (connect, pool, statement), a
# server shutting down or starting up, a connection killed under a query.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable; TimeoutError (asyncio's too) is one
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,  # ConnectionDoesNotExistError: the connection died mid-query
    asyncpg.CannotConnectNowError,  # starting up or shutting down
    asyncpg.OperatorInterventionError,  # admin shutdown, statement timeout (query_canceled)
    # A pooled connection reused while its cancelled operation (after a timeout or a dropped
    # server) was still winding down: seen only while the database is going away.
    asyncpg.InternalClientError,
    DBConnectionError,
)
# Handlers are looked up by exception class: the transports register theirs for these.
UNAVAILABLE_TYPES: tuple[type[BaseException], ...] = (*_UNAVAILABLE, OperationalError)
RETRY_AFTER_SECONDS = 5


def is_unavailable(exc: BaseException | None) -> bool:
    """Whether `exc` (or what it wraps) says the database is down, hung or busy."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, _UNAVAILABLE) and not isinstance(
            exc, FileNotFoundError | PermissionError | IsADirectoryError
        ):
            return True
        if isinstance(exc, OperationalError) and "database is locked" in str(exc):
            return True  # SQLite: another writer held the lock past busy_timeout
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


async def _keep_session(connection: asyncpg.Connection) -> None:
    """The pool's reset on release: nothing beyond what asyncpg always does first (roll back
    an open transaction, drop listeners).

    asyncpg's default reset sends `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL` on every release: one more round trip for each query outside a transaction
    (the API's token read, each access-log flush), which cost ≈ 90 µs of the web process's
    CPU and ≈ 55 µs of PostgreSQL's per release (docs/benchmarks.md, "Web processes").
    coop leaves no session state on pooled connections to undo: no `SET` (settings are
    connection parameters), no `LISTEN` (the job queue has its own psycopg connections), no
    advisory locks, no cursors outliving their transaction."""


# -- transactions shared by tasks (both engines) ---------------------------------------------

# The nested blocks (savepoints) the running code is inside, innermost last. A task started
# inside a block inherits them with its context, so it counts as inside the block too.
_inside: contextvars.ContextVar[tuple[object, ...]] = contextvars.ContextVar(
    "coop_savepoints", default=()
)


class TransactionGate:
    """Who may use one transaction's connection now: one statement at a time, and while a
    nested `in_transaction()` block (a savepoint) is open, only the code inside it.

    Savepoints nest as a stack whoever opened them: `ROLLBACK TO a` undoes every statement
    since `SAVEPOINT a`, `RELEASE a` releases every savepoint opened after it. So when tasks
    share a transaction (asyncio.gather inside `in_transaction()`) and one of them opens a
    nested block, the others' statements and nested blocks wait until that block ends, and a
    block's rollback undoes exactly its own work; the tasks the block starts are inside it.
    Once the transaction has ended, a task that outlived it gets TransactionManagementError
    instead of a connection the transaction has given back."""

    __slots__ = ("_held", "_open", "_queue", "ended")

    def __init__(self) -> None:
        self._held = False
        self._open: list[object] = []  # the open nested blocks, innermost last
        # Waiting turns in arrival order, each with the blocks its task is inside.
        self._queue: deque[tuple[asyncio.Future[None], tuple[object, ...]]] = deque()
        self.ended = False

    async def acquire(self) -> None:
        """Wait for this task's turn (give it back with `release`)."""
        entry = (asyncio.get_running_loop().create_future(), _inside.get())
        self._queue.append(entry)
        self._hand_over()
        try:
            await entry[0]  # no loop turn when it is handed over at once
        except BaseException:
            if entry[0].done() and not entry[0].cancelled():
                self.release()  # handed over, then cancelled before it ran
            else:
                self._queue.remove(entry)
            raise
        if self.ended:
            self.release()
            raise TransactionManagementError(
                "the transaction has ended: a task started inside it outlived it"
            )

    def release(self) -> None:
        self._held = False
        self._hand_over()

    def _hand_over(self) -> None:
        """Give the free turn to the first waiting task allowed to take it."""
        if self._held:
            return
        for entry in self._queue:
            waiter, inside = entry
            if not waiter.done() and (not self._open or self._open[-1] in inside):
                self._queue.remove(entry)
                self._held = True
                waiter.set_result(None)
                return

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self.release()

    async def open(self, savepoint: Callable[[], Awaitable[None]]) -> object:
        """Run `savepoint` (SAVEPOINT) and mark its block open, in one turn."""
        async with self:
            await savepoint()
            block = object()
            self._open.append(block)
            return block

    async def close(self, block: object, end: Callable[[], Awaitable[None]] | None) -> None:
        """Run `end` (RELEASE or ROLLBACK TO) once `block` is the innermost open one (blocks
        opened inside it by its tasks end first), and mark it closed even if `end` fails."""
        try:
            await self.acquire()
        except BaseException:
            # Cancelled again while waiting (or the transaction ended): nobody may wait for
            # this block any longer, the transaction's own ROLLBACK included. Its savepoint
            # stays open; a transaction whose task was cancelled is expected to roll back.
            self._drop(block)
            raise
        try:
            if end is not None:
                await end()
        finally:
            self._drop(block)
            self.release()

    def _drop(self, block: object) -> None:
        self._open.remove(block)
        self._hand_over()


class GatedConnection(ConnectionWrapper[Any]):
    """tortoise's per-statement hold on a transaction's connection, taken at its gate."""

    __slots__ = ("_gate",)

    def __init__(self, gate: TransactionGate, client: Any) -> None:
        self._gate = gate
        self.client = client
        self.connection = client._connection

    async def __aenter__(self) -> Any:
        await self._gate.acquire()
        return self.connection

    async def __aexit__(self, *exc: object) -> None:
        self._gate.release()


class GatedTransaction:
    """What both engines' transaction clients add to tortoise's (mixed in before it): one
    TransactionGate per transaction, shared with its nested blocks' clients; every statement,
    BEGIN, COMMIT and ROLLBACK taken at it; a nested `in_transaction()` is a `Savepoint`."""

    _gate: TransactionGate

    def __init__(self, connection: Any) -> None:
        super().__init__(connection)  # type: ignore[call-arg]
        nested = isinstance(connection, GatedTransaction)
        self._gate = connection._gate if nested else TransactionGate()

    def _in_transaction(self) -> TransactionContext:
        return Savepoint(type(self)(self))

    def acquire_connection(self) -> ConnectionWrapper[Any]:
        return GatedConnection(self._gate, self)

    async def begin(self) -> None:
        async with self._gate:
            await super().begin()  # type: ignore[misc]

    async def commit(self) -> None:
        async with self._gate:
            await super().commit()  # type: ignore[misc]

    async def rollback(self) -> None:
        async with self._gate:
            await super().rollback()  # type: ignore[misc]


class Savepoint(TransactionContext):
    """A nested `in_transaction()` block: a savepoint opened and closed at the gate of the
    transaction that `client` (a nested transaction client with a `_gate`) belongs to."""

    __slots__ = ("_block", "_token", "client", "connection_name")

    def __init__(self, client: Any) -> None:
        self.client: Any = client
        self.connection_name = client.connection_name

    async def __aenter__(self) -> TransactionalDBClient:
        self._block = await self.client._gate.open(self.client.savepoint)
        self._token = _inside.set((*_inside.get(), self._block))
        return self.client  # type: ignore[no-any-return]

    async def __aexit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        end = None
        # As tortoise: nothing to end after an explicit commit/rollback or a failed transaction.
        if not self.client._finalized and exc_type is not TransactionManagementError:
            end = self.client.savepoint_rollback if exc_type else self.client.release_savepoint
        try:
            await self.client._gate.close(self._block, end)
        finally:
            _inside.reset(self._token)


class _Pool(asyncpg.Pool):  # type: ignore[misc]
    """asyncpg's pool with a default bound on waiting for a free connection."""

    acquire_timeout: float | None = None

    def acquire(self, *, timeout: float | None = None) -> Any:
        return super().acquire(timeout=self.acquire_timeout if timeout is None else timeout)


class _SerialTransaction(GatedTransaction, TransactionWrapper):
    """tortoise's asyncpg transaction client, with every statement, BEGIN, COMMIT, ROLLBACK
    and savepoint taken at the transaction's TransactionGate, shared with the nested blocks.

    tortoise serialises a transaction's queries (asyncio.gather inside one transaction) but
    not its BEGIN/COMMIT/ROLLBACK: when one of two queries run together fails, the error
    leaves the `async with` while the other is still running on the connection, and the
    ROLLBACK then fails with asyncpg's "cannot perform operation: another operation is in
    progress" instead of the error that caused it (and, raised from the pool's release, left
    the task bound to the released connection). At the gate the ROLLBACK waits for the
    running query, and the first error is the one raised. Nor does it keep the savepoints of
    tasks sharing the transaction apart: the gate does (see TransactionGate)."""

    # Savepoints run inside the gate's turn (Savepoint): tortoise's (its begin/commit/
    # rollback on a nested client), not GatedTransaction's, which would take a second turn.
    async def savepoint(self) -> None:
        await TransactionWrapper.begin(self)

    async def release_savepoint(self) -> None:
        await TransactionWrapper.commit(self)

    async def savepoint_rollback(self) -> None:
        await TransactionWrapper.rollback(self)


class _TransactionContext(TransactionContextPooled):
    """tortoise's pooled transaction context, made exception-safe: a failed BEGIN releases
    its connection (tortoise leaves it out of the pool for good, since `__aexit__` does not
    run when `__aenter__` raises), and the task's connection is restored before the pool
    release, which may itself fail (it resets the connection on a dead server). Its gate ends
    with it."""

    client: _SerialTransaction

    async def __aenter__(self) -> Any:
        before = self.client._connection
        try:
            return await super().__aenter__()
        except BaseException:
            self.client._gate.ended = True
            token = getattr(self, "token", None)
            if token is not None:
                tortoise_connections.reset(token)
            acquired = self.client._connection
            if acquired is not before and self.client._parent._pool:
                await self.client._parent._pool.release(acquired)
            raise

    async def __aexit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        try:
            if not self.client._finalized:
                if exc_type:
                    if exc_type is not TransactionManagementError:
                        await self.client.rollback()
                else:
                    await self.client.commit()
        finally:
            self.client._gate.ended = True
            tortoise_connections.reset(self.token)
            if self.client._parent._pool:
                await self.client._parent._pool.release(self.client._connection)


class CoopPostgresClient(AsyncpgDBClient):
    """tortoise's asyncpg client, building a pool whose `acquire` is bounded
    (`COOP_DB_ACQUIRE_TIMEOUT`); connect and statement bounds are asyncpg's own options;
    transactions are serialised and exception-safe (`_SerialTransaction`)."""

    def _in_transaction(self) -> TransactionContext:
        return _TransactionContext(_SerialTransaction(self), self._pool_init_lock)

    async def create_pool(self, **kwargs: Any) -> asyncpg.Pool:
        acquire_timeout = kwargs.pop("acquire_timeout", None)
        pool = _Pool(
            min_size=kwargs.pop("min_size", 1),
            max_size=kwargs.pop("max_size", 5),
            max_queries=kwargs.pop("max_queries", 50000),
            max_inactive_connection_lifetime=kwargs.pop("max_inactive_connection_lifetime", 300.0),
            connect=None,
            setup=None,
            init=None,
            reset=kwargs.pop("reset", _keep_session),
            loop=kwargs.pop("loop", None),
            connection_class=kwargs.pop("connection_class", asyncpg.Connection),
            record_class=asyncpg.Record,
            **kwargs,
        )
        pool.acquire_timeout = None if acquire_timeout is None else float(acquire_timeout)
        return await pool


# tortoise loads an engine module and uses its `client_class`.
client_class = CoopPostgresClient


# -- the shared job queue's rows of one member (PostgreSQL) ----------------------------------

QUEUE_TABLE = "procrastinate_jobs"
# Jobs name their member in this argument (coop.jobs.pgqueue); an index on it keeps dropping
# a member's jobs independent of the queue's length (created by `coop migrate`).
QUEUE_MEMBER_INDEX = (
    f"CREATE INDEX IF NOT EXISTS coop_queue_member_idx ON {QUEUE_TABLE} ((args->>'member_id'))"
)
_queue_present = False


async def drop_queued_jobs(member_id: Any) -> int:
    """Delete every job of the shared queue that names `member_id` and is not running now:
    an erased member's waiting syncs and scorings never start (ER-07), and the queue keeps
    no id of theirs (ER-04). A running one stops at its next check of the member's key.
    Nothing to do on SQLite (in-process jobs) or before the queue's tables exist."""
    global _queue_present
    from tortoise import connections

    if db_kind() != "postgres":
        return 0
    conn = connections.get("default")
    if not _queue_present:
        _, rows = await conn.execute_query(f"SELECT to_regclass('{QUEUE_TABLE}') AS t")
        if not rows or rows[0]["t"] is None:
            return 0
        _queue_present = True
    deleted, _ = await conn.execute_query(
        f"DELETE FROM {QUEUE_TABLE} WHERE args->>'member_id' = $1 AND status <> 'doing'",  # noqa: S608
        [str(member_id)],
    )
    return int(deleted)
