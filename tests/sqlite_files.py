"""Reading the test database's bytes from disk without breaking the open SQLite connection."""

from __future__ import annotations

import subprocess
from pathlib import Path


def sqlite_bytes(url: str) -> bytes:
    """The SQLite database file of `url` and its WAL and journal, read by a child process.

    Never read them from this process: opening and closing any descriptor of the database
    file drops every POSIX lock this process holds on it, which the open SQLite connection
    relies on. Another process (a CLI test's `coop`) would then think it is the only
    connection, reset the shared WAL index and from then on see a different database than
    this process does: stale rows, writes that never show.
    """
    path = Path(url.removeprefix("sqlite://").split("?", 1)[0])
    files = [str(path.with_name(path.name + suffix)) for suffix in ("", "-wal", "-journal")]
    files = [name for name in files if Path(name).exists()]
    assert files, f"the SQLite database file {path} was not found"
    return subprocess.run(["cat", *files], capture_output=True, check=True, timeout=60).stdout
