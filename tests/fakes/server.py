"""Run an ASGI app as a real uvicorn server on 127.0.0.1 (free port) in a background thread.

Usage, as a context manager or through the `serve` fixture helper:

    with LiveServer(app) as server:
        url = server.url("/feed.xml")   # http://127.0.0.1:<port>/feed.xml

The server is a real TCP listener, so the code under test goes through sockets, DNS-free
loopback addresses and the SSRF guard exactly as in production. `stop()` (or leaving the
`with` block) shuts it down and joins the thread; nothing is left running.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (bind to port 0, read it back, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def stop_process(process: subprocess.Popen[Any]) -> None:
    """End a server process started by a test: SIGTERM, then SIGKILL after 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # signals belong to the test runner's thread
        pass


class LiveServer:
    """A uvicorn server for `app` in a daemon thread with its own event loop."""

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        config = uvicorn.Config(
            app,
            host=host,
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            loop="asyncio",
            http="h11",
            ws="none",
            timeout_graceful_shutdown=1,
        )
        self._server = _Server(config)
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def start(self, timeout: float = 10.0) -> LiveServer:
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve()), name="coop-fake-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"fake server on port {self.port} did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout)
        self._thread = None

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


__all__ = ["LiveServer", "free_port"]
