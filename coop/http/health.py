"""Liveness/readiness (`/healthz`) and Prometheus metrics (`/metrics`)."""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from tortoise import connections

log = logging.getLogger("coop.health")

HEALTH_TIMEOUT_SECONDS = 2.0


async def healthz(request: Request) -> Response:
    """200 when the database answers, 503 (with Retry-After) when it does not."""
    try:
        # A database that hangs must not hang the probe: answer 503 quickly instead.
        async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
            await connections.get("default").execute_query("SELECT 1")
    except Exception as exc:  # any driver error or the timeout means "not ready"
        log.warning("health check: database unavailable (%s)", type(exc).__name__)
        return JSONResponse(
            {"status": "unavailable", "database": "down"},
            status_code=503,
            headers={"Retry-After": "5"},
        )
    return JSONResponse({"status": "ok", "database": "up"})


async def metrics(request: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def routes() -> list[BaseRoute]:
    return [Route("/healthz", healthz), Route("/metrics", metrics)]
