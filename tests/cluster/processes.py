"""Real `coop` processes (serve, worker, migrate) against one database, as an operator runs
them: the environment carries the database URL and the keys, nothing else is shared."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import make_master_key
from tests.fakes.server import free_port


def coop_env(data_dir: Path, database_url: str, **extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("COOP_")}
    return {
        **keep,
        "COOP_DATA_DIR": str(data_dir),
        "COOP_DATABASE_URL": database_url,
        "COOP_MASTER_KEY": make_master_key(),
        "COOP_SECRET_KEY": "cluster-secret-" + "x" * 40,
        "COOP_ISSUER": "http://127.0.0.1:8000",
        "COOP_OUTBOUND_ALLOW": "127.0.0.1/32",
        **extra,
    }


def coop(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coop", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class CoopProcess:
    """One `coop <command>` process with its output in a log file."""

    def __init__(self, env: dict[str, str], *args: str, log_path: Path) -> None:
        self.args = args
        self.env = env
        self.log_path = log_path
        self.port: int | None = None
        if args and args[0] == "serve":
            self.port = free_port()
            args = (*args, "--host", "127.0.0.1", "--port", str(self.port))
        with log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "coop", *args],
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"coop {self.args[0]} exited early:\n{self.log()}")
            try:
                if httpx.get(self.base_url + "/healthz", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"coop {self.args[0]} did not get healthy:\n{self.log()}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)
