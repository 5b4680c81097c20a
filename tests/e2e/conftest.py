"""End-to-end fixtures: a real `coop serve` process on loopback and Debian's Chromium.

The server runs as a subprocess exactly as an operator would start it (migrations applied by
`coop migrate`, keys from the environment), on a fresh SQLite file or a fresh PostgreSQL
database per engine. The browser is Playwright driving /usr/bin/chromium (installed by .ci/run
with apt-get); Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, Response, async_playwright

from tests.conftest import _pg_url, create_pg_database, drop_pg_database, make_master_key
from tests.fakes.server import free_port, stop_process

CHROMIUM = os.environ.get("COOP_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@dataclass
class CoopServer:
    base_url: str
    env: dict[str, str]
    data_dir: Path
    database_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    def coop(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a `coop` CLI command against this server's database and keys."""
        return subprocess.run(
            [sys.executable, "-m", "coop", *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=check,
            timeout=60,
        )

    def log(self) -> str:
        return _read(self.log_path)


def _server_env(data_dir: Path, database_url: str, port: int) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("COOP_")}
    return {
        **keep,
        "COOP_DATA_DIR": str(data_dir),
        "COOP_DATABASE_URL": database_url,
        "COOP_MASTER_KEY": make_master_key(),
        "COOP_SECRET_KEY": "e2e-secret-" + "x" * 40,
        "COOP_ISSUER": f"http://127.0.0.1:{port}",
        "COOP_OUTBOUND_ALLOW": "127.0.0.1/32",
        "COOP_RATE_LIMIT": "0",
    }


def _start_server(env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "coop", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )


def _stop_server(process: subprocess.Popen[bytes]) -> None:
    stop_process(process)


# Bounded, and generous: on a loaded machine `coop migrate` and `coop serve` start slowly.
STARTUP_SECONDS = 300


async def migrate(env: dict[str, str]) -> None:
    """Run `coop migrate` for a server's environment, as an operator does before `serve`."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "coop",
        "migrate",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=STARTUP_SECONDS)
    assert process.returncode == 0, output.decode(errors="replace")


def _read(log_path: Path) -> str:
    return log_path.read_text(errors="replace")


async def wait_healthy(process: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    """Return once `coop serve` answers /healthz; fail with its log if it exits or never does."""
    deadline = time.monotonic() + STARTUP_SECONDS
    async with httpx.AsyncClient() as client:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"coop serve exited early:\n{_read(log_path)}")
            try:
                if (await client.get(base_url + "/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"coop serve did not become healthy:\n{_read(log_path)}")
            await asyncio.sleep(0.1)


@asynccontextmanager
async def database(engine: str, folder: Path) -> AsyncIterator[str]:
    """A fresh database URL for `engine`: a SQLite file in `folder`, or a PostgreSQL database
    created for the caller and dropped afterwards."""
    if engine == "sqlite":
        yield f"sqlite://{folder / 'coop.sqlite3'}"
        return
    pg_name = await create_pg_database()
    try:
        yield _pg_url(pg_name)
    finally:
        await drop_pg_database(pg_name)


@pytest.fixture(scope="session")
async def coop_server(
    engine: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[CoopServer]:
    """A real coop server (one uvicorn worker) on a free loopback port, for this engine."""
    data_dir = tmp_path_factory.mktemp(f"e2e-{engine}")
    async with database(engine, data_dir) as database_url:
        port = free_port()
        env = _server_env(data_dir, database_url, port)
        await migrate(env)
        log_path = data_dir / "server.log"
        process = await asyncio.to_thread(_start_server, env, port, log_path)
        base_url = f"http://127.0.0.1:{port}"
        try:
            await wait_healthy(process, base_url, log_path)
            yield CoopServer(base_url, env, data_dir, database_url, process, log_path)
        finally:
            await asyncio.to_thread(_stop_server, process)


@dataclass
class Operator:
    """A coop server of a test's own, which the test may restart (after upgrading a plugin)."""

    env: dict[str, str]
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.process = await asyncio.to_thread(_start_server, self.env, self.port, self.log)
        await wait_healthy(self.process, self.base_url, self.log)

    async def stop(self) -> None:
        assert self.process is not None
        await asyncio.to_thread(_stop_server, self.process)


@asynccontextmanager
async def operated(engine: str, folder: Path, **extra_env: str) -> AsyncIterator[Operator]:
    """A migrated, healthy server of the test's own on a fresh database for `engine`, with
    `extra_env` set (COOP_PLUGIN_PATH, COOP_GOVERNANCE…); its data folder is `folder/data`
    (beside any plugin folder: the sandbox never shows the data dir)."""
    data = folder / "data"
    data.mkdir()
    async with database(engine, folder) as url:
        port = free_port()
        env = {**_server_env(data, url, port), **extra_env}
        await migrate(env)
        running = Operator(env, port, data / "server.log")
        await running.start()
        try:
            yield running
        finally:
            await running.stop()


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's `chromium` (.ci/run does)")
    return CHROMIUM


@pytest.fixture(scope="session")
async def browser(chromium_path: str) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def context(browser: Browser, coop_server: CoopServer) -> AsyncIterator[BrowserContext]:
    ctx = await browser.new_context(base_url=coop_server.base_url)
    ctx.set_default_timeout(10_000)
    try:
        yield ctx
    finally:
        await ctx.close()


@pytest.fixture
async def page(context: BrowserContext, coop_server: CoopServer) -> AsyncIterator[Page]:
    """A page that fails its test on any script error, or on any subresource coop serves
    with an error status (a broken stylesheet, image or icon). Error statuses of documents
    are the tests' business (a refused login is meant to be 4xx)."""
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"script error: {exc}"))

    def check_response(response: Response) -> None:
        request = response.request
        if (
            response.status >= 400
            and request.resource_type != "document"
            and response.url.startswith(coop_server.base_url)
        ):
            errors.append(f"{response.status} for {request.resource_type} {response.url}")

    page.on("response", check_response)
    yield page
    assert not errors, f"the page reported errors: {errors}"
