"""`coop backup` and `coop restore`: database copies that can never resurrect an erased member.

Backup: SQLite through the online backup API (a consistent copy while the server runs);
PostgreSQL through `pg_dump --format=custom`. Files are written 0600 and renamed into place.

Restore re-applies the deletion ledger before anything can serve the data: first every entry
of the current database's ledger is appended to the ledger file (so an erasure that was only
in the database survives the replacement), then the backup is restored and every ledger entry
is applied to it (member key destroyed, rows purged). SQLite restores into a side file that
replaces the live one only once the ledger is applied; PostgreSQL restores in place, so the
server must be stopped (it re-applies the ledger at every start too). See docs/operations.md.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import anyio.to_thread
from tortoise import Tortoise

from coop.config import Settings
from coop.db import (
    ensure_data_dir,
    make_private_sqlite,
    normalise_url,
    sqlite_path,
    sqlite_sidecars,
    tortoise_config,
)
from coop.errors import ConfigError, InvalidInputError
from coop.portability import erase, ledger
from coop.portability.models import DeletionLedger
from coop.vault import Vault

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_MAGIC = b"PGDMP"


@dataclass(frozen=True)
class RestoreReport:
    engine: str
    ledger_entries: int
    reapplied: int


def _sqlite_file(settings: Settings) -> Path:
    path = sqlite_path(settings)
    if path is None:
        raise InvalidInputError("An in-memory SQLite database has no file to back up or restore.")
    return path


def _pg_dsn(settings: Settings) -> str:
    url = normalise_url(settings.database_url)
    return "postgresql://" + url.removeprefix("postgres://")


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise ConfigError(
            f"{name} is not installed: install the PostgreSQL client tools "
            f"(Debian: apt-get install postgresql-client) to back up or restore PostgreSQL."
        )
    return found


def _private_target(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    return partial


def _sqlite_copy(source: Path, target: Path) -> None:
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        with dst:
            src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # a self-contained file, no -wal beside it
    finally:
        dst.close()
        src.close()


async def backup(*, settings: Settings, out: Path) -> str:
    """Write a backup of the configured database to `out`. Returns the engine name."""
    partial = _private_target(out)
    try:
        if settings.is_sqlite:
            source = _sqlite_file(settings)
            if not source.exists():
                raise InvalidInputError(f"There is no database at {source} to back up.")
            await anyio.to_thread.run_sync(_sqlite_copy, source, partial)
            engine = "sqlite"
        else:
            command = [
                _tool("pg_dump"),
                "--format=custom",
                "--no-owner",
                "--no-acl",
                f"--file={partial}",
                _pg_dsn(settings),
            ]
            await anyio.to_thread.run_sync(_run, command)
            engine = "postgres"
        os.replace(partial, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return engine


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        first = (result.stderr.strip().splitlines() or ["unknown error"])[-1]
        raise ConfigError(f"{Path(command[0]).name} failed: {first}")


def detect(path: Path) -> str:
    if not path.is_file():
        raise InvalidInputError(f"{path} is not a file.")
    with path.open("rb") as fh:
        head = fh.read(16)
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PG_MAGIC):
        return "postgres"
    raise InvalidInputError(f"{path} is not a coop backup (neither SQLite nor pg_dump custom).")


async def _with_db(settings: Settings, url: str | None = None) -> None:
    await Tortoise.init(config=tortoise_config(settings, url=url))


async def save_current_ledger(settings: Settings) -> int:
    """Append the current database's ledger entries missing from the ledger file."""
    if settings.is_sqlite and not _sqlite_file(settings).exists():
        return 0
    await _with_db(settings)
    try:
        try:
            entries = await DeletionLedger.all()
        except Exception:  # no ledger table yet (an empty or foreign database)
            return 0
        known = ledger.known_ids(ledger.read(settings))
        added = 0
        for entry in entries:
            if entry.id not in known:
                ledger.append(
                    settings, ledger_id=entry.id, hash_=entry.member_hash, at=entry.requested_at
                )
                added += 1
        return added
    finally:
        await Tortoise.close_connections()


async def apply_ledger(*, vault: Vault, settings: Settings, url: str | None = None) -> int:
    await _with_db(settings, url)
    try:
        return await erase.resume_pending(vault=vault, settings=settings)
    finally:
        await Tortoise.close_connections()


def _self_contained(path: Path) -> None:
    """Fold any WAL into the file and leave it in rollback-journal mode, ready to move."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode=DELETE")
    finally:
        conn.close()


async def restore(*, vault: Vault, settings: Settings, source: Path) -> RestoreReport:
    """Restore `source` over the configured database, then re-apply the deletion ledger."""
    engine = detect(source)
    wanted = "sqlite" if settings.is_sqlite else "postgres"
    if engine != wanted:
        raise InvalidInputError(
            f"{source} is a {engine} backup but coop is configured for {wanted}."
        )
    ensure_data_dir(settings)
    await save_current_ledger(settings)
    entries = len(ledger.read(settings))
    if engine == "sqlite":
        reapplied = await _restore_sqlite(vault, settings, source)
    else:
        command = [
            _tool("pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-acl",
            "--single-transaction",
            f"--dbname={_pg_dsn(settings)}",
            str(source),
        ]
        await anyio.to_thread.run_sync(_run, command)
        reapplied = await apply_ledger(vault=vault, settings=settings)
    return RestoreReport(engine=engine, ledger_entries=entries, reapplied=reapplied)


async def _restore_sqlite(vault: Vault, settings: Settings, source: Path) -> int:
    live = _sqlite_file(settings)
    side = live.with_name(live.name + ".restoring")
    for stale in (side, *sqlite_sidecars(side)):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
    make_private_sqlite(side)
    await anyio.to_thread.run_sync(_sqlite_copy, source, side)
    reapplied = await apply_ledger(vault=vault, settings=settings, url=f"sqlite://{side}")
    await anyio.to_thread.run_sync(_self_contained, side)
    for stale in sqlite_sidecars(live):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
    os.replace(side, live)
    return reapplied


def describe(settings: Settings) -> str:
    if settings.is_sqlite:
        return str(sqlite_path(settings) or ":memory:")
    parts = urlsplit(settings.database_url)
    return f"{parts.hostname}:{parts.port or 5432}{parts.path}"
