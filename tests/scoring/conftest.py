"""Scoring fixtures: the hostile plugin distribution installed into a throw-away plugin path
(`pip install --target`, found through COOP_PLUGIN_PATH / SandboxConfig.plugin_path), so the
shared venv never sees it, and sandboxes with short, test-friendly limits."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from coop.scoring.sandbox import Sandbox, SandboxConfig

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def hostile_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hostile fixture distribution, pip-installed into its own folder."""
    target = tmp_path_factory.mktemp("plugin-site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(FIXTURES / "coop-score-hostile"),
        ],
        check=True,
        capture_output=True,
    )
    target.chmod(0o755)  # imported by unprivileged uids (pytest's folders are 0700)
    return target


@pytest.fixture(scope="session")
def sandbox_config(hostile_site: Path) -> SandboxConfig:
    return SandboxConfig(
        plugin_path=(str(hostile_site),),
        timeout_seconds=2.0,
        cpu_seconds=5,
        require_isolation=True,
        start_timeout=60.0,
    )


@pytest.fixture(scope="module")
async def sandbox(sandbox_config: SandboxConfig) -> AsyncIterator[Sandbox]:
    box = Sandbox(sandbox_config)
    await box.start()
    try:
        yield box
    finally:
        await box.close()


@pytest.fixture
async def fresh_sandbox(sandbox_config: SandboxConfig) -> AsyncIterator[Sandbox]:
    box = Sandbox(replace(sandbox_config))
    try:
        yield box
    finally:
        await box.close()


class CanaryListener:
    """A listening socket that counts connections (a sandbox must make none): TCP on
    127.0.0.1, or a Unix socket at `unix` (`@name` is in the abstract namespace)."""

    def __init__(self, unix: str | None = None) -> None:
        self.unix = unix
        if unix is None:
            self.sock = socket.create_server(("127.0.0.1", 0))
        else:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.bind(unix.replace("@", "\0", 1) if unix.startswith("@") else unix)
            if not unix.startswith("@"):
                os.chmod(unix, 0o777)  # noqa: S103 - anyone who can see it may connect
            self.sock.listen()
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1] if unix is None else 0
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()
        if self.unix and not self.unix.startswith("@"):
            Path(self.unix).unlink(missing_ok=True)


@pytest.fixture
def canary_listener() -> Iterator[CanaryListener]:
    listener = CanaryListener()
    try:
        yield listener
    finally:
        listener.close()


@pytest.fixture
def canaries() -> Iterator[dict[str, CanaryListener]]:
    """Listeners a plugin must never reach: TCP on loopback, an abstract-namespace Unix
    socket, and filesystem Unix sockets under /tmp and /run (world-connectable)."""
    tag = uuid.uuid4().hex[:8]
    listeners = {
        "tcp": CanaryListener(),
        "abstract": CanaryListener(f"@coop-canary-{tag}"),
        "tmp": CanaryListener(f"/tmp/coop-canary-{tag}.sock"),
        "run": CanaryListener(f"/run/coop-canary-{tag}.sock"),
    }
    try:
        yield listeners
    finally:
        for listener in listeners.values():
            listener.close()


# Folders every scorer child gets a private, empty copy of (coop/scoring/lockdown.py).
PRIVATE_IN_SANDBOX = ("/tmp", "/var/tmp", "/dev/shm")


def _visible_base() -> Path:
    """A world-traversable folder the sandbox does NOT replace, so a test reaches the file's
    own permission check: the checkout's build/ folder, unless the checkout lives under /tmp
    (a CI clone), then /var/lib/coop-tests (these isolation tests run as root)."""
    root = ROOT.resolve()
    if not any(root.is_relative_to(private) for private in PRIVATE_IN_SANDBOX):
        return root / "build"  # git-ignored
    return Path("/var/lib/coop-tests")


@pytest.fixture
def secret_dir() -> Iterator[Path]:
    """A folder outside the sandbox's private mounts (like a data dir) holding 0600 secrets."""
    parent = _visible_base()
    parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    base = parent / f"scoring-test-{uuid.uuid4().hex[:8]}"
    base.mkdir(mode=0o755)
    base.chmod(0o755)
    for name in ("coop.sqlite3", "keyring"):
        path = base / name
        path.write_text("TOP-SECRET")
        path.chmod(0o600)
    try:
        yield base
    finally:
        for child in base.iterdir():
            child.unlink()
        base.rmdir()
