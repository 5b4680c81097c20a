"""/healthz readiness and /metrics, plus the headers every response carries."""

from __future__ import annotations

import asyncio
import time

import httpx
from tortoise.context import TortoiseContext

from coop.app import build_app
from coop.config import Settings
from coop.db import tortoise_config
from coop.http.health import HEALTH_TIMEOUT_SECONDS


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
