"""A PostgreSQL cluster of the test's own (initdb on a free port in a temporary folder), so
that fault tests can restart, stop and start it without touching the shared server.

initdb refuses to run as root: as root the cluster belongs to the `postgres` system user and
its commands run through `runuser`.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.fakes.server import free_port


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    on_path = shutil.which(name)
    if on_path is None:
        raise RuntimeError(f"PostgreSQL's {name} is not installed")
    return on_path


class PgCluster:
    """`start()`, `stop()`, `restart()` one throw-away cluster; `url(db)` for coop."""

    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="coop-pg-"))
        self.root.chmod(0o755)  # the postgres user must reach its data folder
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self._as: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            self.data.mkdir(mode=0o700)
            self.log.touch()
            for path in (self.data, self.log):
                os.chown(path, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self._run(
            _bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8"
        )

    def _run(self, *args: str) -> None:
        done = subprocess.run(
            [*self._as, *args], capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stdout}{done.stderr}")

    def _ctl(self, *args: str) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data} -c fsync=off "
            "-c max_connections=200"
        )
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, *args)

    def start(self) -> None:
        self._ctl("-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-w", "-m", mode, "stop")

    def restart(self, mode: str = "fast") -> None:
        self._ctl("-w", "-m", mode, "restart")

    def url(self, database: str = "postgres", port: int | None = None) -> str:
        return f"postgres://postgres@127.0.0.1:{port or self.port}/{database}"

    def create_database(self, name: str) -> None:
        self._run(_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError):  # already stopped
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
