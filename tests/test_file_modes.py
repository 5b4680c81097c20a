"""The SQLite database, its -wal and -shm files and its backups are 0600, whatever the umask,
after real writes by a real server (docs/operations.md)."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.http.served import Served, served
from tests.web.journeys import PASSWORD, csrf_token_in

DB_NAME = "coop.sqlite3"


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The usual 022: files are world-readable unless coop says otherwise."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def sign_up(server: Served, email: str) -> None:
    with httpx.Client(base_url=server.url("")) as client:
        token = csrf_token_in(client.get("/signup").text)
        answer = client.post(
            "/signup", data={"csrf_token": token, "email": email, "password": PASSWORD}
        )
        assert answer.status_code == 303


def database_files(data_dir: Path) -> list[Path]:
    db = data_dir / DB_NAME
    return [db, db.with_name(DB_NAME + "-wal"), db.with_name(DB_NAME + "-shm")]


@pytest.mark.usefixtures("loose_umask")
def test_the_database_wal_and_shm_are_0600_after_real_writes(tmp_path: Path) -> None:
    with served(tmp_path) as server:
        sign_up(server, "modes@example.org")
        files = database_files(server.data_dir)
        assert all(f.exists() for f in files), [f.name for f in files if not f.exists()]
        assert {f.name: oct(mode(f)) for f in files} == {f.name: "0o600" for f in files}
        assert mode(server.data_dir) == 0o700

        backup = tmp_path / "backups" / "coop.backup"
        made = server.coop("backup", "--out", str(backup))
        assert made.returncode == 0, made.stderr
        assert mode(backup) == 0o600
        assert not backup.with_name(backup.name + "-journal").exists()


def narrow_modes(files: list[Path]) -> dict[str, str]:
    return {f.name: oct(mode(f)) for f in files if f.exists()}


@pytest.mark.usefixtures("loose_umask")
def test_files_an_older_coop_left_readable_are_narrowed_by_migrate_and_restore(
    tmp_path: Path,
) -> None:
    with served(tmp_path) as server:
        sign_up(server, "older@example.org")
        backup = tmp_path / "coop.backup"
        assert server.coop("backup", "--out", str(backup)).returncode == 0
    files = database_files(server.data_dir)
    with sqlite3.connect(files[0]) as conn:  # as an older coop left them: WAL beside, 0644
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE older (x)")
        for file in files:
            file.chmod(0o644)

        migrated = server.coop("migrate")

    assert migrated.returncode == 0, migrated.stderr
    assert narrow_modes(files) == {f.name: "0o600" for f in files}

    files[0].chmod(0o644)
    restored = server.coop("restore", str(backup))
    assert restored.returncode == 0, restored.stderr
    assert narrow_modes(files) == {f.name: "0o600" for f in files if f.exists()}


def test_making_the_file_private_keeps_the_locks_sqlite_holds_in_this_process(
    tmp_path: Path,
) -> None:
    """Closing any descriptor of a file drops this process's POSIX locks on it, SQLite's
    included: narrowing an open database must never open and close it."""
    import subprocess
    import sys

    from coop.db import make_private_sqlite

    path = tmp_path / "coop.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")  # a write lock, held through fcntl
    try:
        make_private_sqlite(path)
        probe = (
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], timeout=0)\n"
            "try:\n    c.execute('BEGIN IMMEDIATE'); print('got the lock')\n"
            "except sqlite3.OperationalError as e:\n    print(e)"
        )
        other = subprocess.run(
            [sys.executable, "-c", probe, str(path)], capture_output=True, text=True, timeout=30
        )
        assert other.stdout.strip() == "database is locked"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
