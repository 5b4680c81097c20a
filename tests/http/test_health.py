"""/healthz readiness and /metrics, plus the headers every response carries."""

from __future__ import annotations

import httpx
from tortoise.context import TortoiseContext

from coop.app import build_app
from coop.config import Settings
from coop.db import tortoise_config


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
