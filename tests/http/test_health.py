"""/healthz readiness and /metrics, plus the headers every response carries."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from tortoise.context import TortoiseContext
from tortoise.transactions import in_transaction

from coop.app import build_app
from coop.config import Settings
from coop.db import close_readers, sqlite_sidecars, tortoise_config
from coop.http.health import HEALTH_TIMEOUT_SECONDS
from coop.vault import Vault
from tests.scoring.factories import make_member


async def test_healthz_reports_database_up(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "up"}


async def test_every_response_carries_security_headers(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    assert len(response.headers["x-request-id"]) == 16


async def test_healthz_is_503_with_retry_after_when_the_database_is_down(
    settings: Settings,
) -> None:
    app = build_app(settings, manage_db=False)
    closed_port = "postgres://postgres@127.0.0.1:1/coop"  # nothing listens on port 1
    # An isolated tortoise context: the session's database stays untouched.
    async with TortoiseContext() as ctx:
        await ctx.init(config=tortoise_config(settings, url=closed_port))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
            response = await c.get("/healthz")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json() == {"status": "unavailable", "database": "down"}


async def test_healthz_does_not_wait_behind_a_long_write_transaction(
    client: httpx.AsyncClient, vault: Vault
) -> None:
    """A large upload writes in long transactions; on SQLite tortoise runs every query through
    one connection behind a lock, so a probe on it would wait out its timeout and answer 503."""
    written = asyncio.Event()
    release = asyncio.Event()

    async def long_write() -> None:
        async with in_transaction():
            await make_member(vault)
            written.set()
            await release.wait()  # the transaction stays open until the probe has answered

    writer = asyncio.create_task(long_write())
    try:
        await written.wait()
        response = await client.get("/healthz")
        still_writing = not writer.done()
    finally:
        release.set()
        await writer
    assert still_writing
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "up"}


@pytest.mark.parametrize("fault", ["removed", "not a database"])
async def test_healthz_is_503_when_the_sqlite_file_is_gone_or_is_not_a_database(
    settings: Settings, tmp_path: Path, fault: str
) -> None:
    path = tmp_path / "coop.sqlite3"
    app = build_app(settings, manage_db=False)
    try:
        async with TortoiseContext() as ctx:
            await ctx.init(config=tortoise_config(settings, url=f"sqlite://{path}"))
            await ctx.generate_schemas()
            for file in [path, *sqlite_sidecars(path)]:
                file.unlink(missing_ok=True)
            if fault == "not a database":
                path.write_bytes(b"not a database, " * 512)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
                response = await c.get("/healthz")
    finally:
        close_readers()  # the probe's read-only connection to this test's file
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "down"}


async def test_metrics_are_prometheus_text(client: httpx.AsyncClient) -> None:
    await client.get("/healthz")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    assert 'coop_http_requests_total{method="GET",status="200"}' in response.text
    assert "coop_http_request_seconds_bucket" in response.text


async def test_healthz_answers_503_quickly_when_the_database_hangs(settings: Settings) -> None:
    held: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accept the connection, never answer

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    app = build_app(settings, manage_db=False)
    try:
        async with TortoiseContext() as ctx:
            await ctx.init(config=tortoise_config(settings, url=f"postgres://x@127.0.0.1:{port}/x"))
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
                started = time.monotonic()
                response = await c.get("/healthz")
                elapsed = time.monotonic() - started
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()
    assert response.status_code == 503
    assert elapsed < HEALTH_TIMEOUT_SECONDS + 1.5
