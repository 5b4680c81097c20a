"""A real `coop serve` process for tests that need real sockets or real files: a fresh data
folder with the default SQLite database, migrated, then served until the block ends.

with served(tmp_path, host="0.0.0.0", env={"COOP_METRICS_TOKEN": ...}) as server:
    httpx.get(server.url("/healthz"))
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import make_master_key
from tests.fakes.server import free_port, stop_process


@dataclass(frozen=True)
class Served:
    host: str
    port: int
    data_dir: Path
    env: dict[str, str]

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def coop(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "coop", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )


def server_env(data_dir: Path, port: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("COOP_")}
    return {
        **keep,
        "COOP_DATA_DIR": str(data_dir),
        "COOP_MASTER_KEY": make_master_key(),
        "COOP_SECRET_KEY": "served-secret-" + "x" * 40,
        "COOP_ISSUER": f"http://127.0.0.1:{port}",
        "COOP_RATE_LIMIT": "0",
        "COOP_SCHEDULER": "0",
        **(extra or {}),
    }


def _wait_healthy(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"coop serve exited early:\n{log.read_text(errors='replace')}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"coop serve did not become healthy:\n{log.read_text(errors='replace')}")


@contextmanager
def served(
    tmp_path: Path, *, host: str = "127.0.0.1", env: dict[str, str] | None = None
) -> Iterator[Served]:
    port = free_port()
    data_dir = tmp_path / "var"
    server = Served(host, port, data_dir, server_env(data_dir, port, env))
    migrated = server.coop("migrate")
    assert migrated.returncode == 0, migrated.stderr
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "coop", "serve", "--host", host, "--port", str(port)],
            env=server.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_healthy(process, server.url("/healthz"), log)
        yield server
    finally:
        stop_process(process)
