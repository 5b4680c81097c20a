"""Liveness/readiness (`/healthz`) and Prometheus metrics (`/metrics`)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from coop.db import ping
from coop.errors import NotFoundError
from coop.http.runtime import get_runtime

log = logging.getLogger("coop.health")

HEALTH_TIMEOUT_SECONDS = 2.0
# A request that went through a proxy is not a local one, whatever its TCP peer is.
FORWARDING_HEADERS = (
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "via",
)


async def healthz(request: Request) -> Response:
    """200 when the database answers, 503 (with Retry-After) when it does not."""
    try:
        # A database that hangs must not hang the probe: answer 503 quickly instead.
        async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
            await ping()
    except Exception as exc:  # any driver error or the timeout means "not ready"
        log.warning("health check: database unavailable (%s)", type(exc).__name__)
        return JSONResponse(
            {"status": "unavailable", "database": "down"},
            status_code=503,
            headers={"Retry-After": "5"},
        )
    return JSONResponse({"status": "ok", "database": "up"})


def _is_local(request: Request) -> bool:
    """The TCP peer is a loopback address (never a header: `coop serve` runs uvicorn without
    proxy headers) and nothing says the request was forwarded by a proxy."""
    if request.client is None or any(h in request.headers for h in FORWARDING_HEADERS):
        return False
    try:
        peer = ipaddress.ip_address(request.client.host)
    except ValueError:
        return False
    if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
        peer = peer.ipv4_mapped
    return peer.is_loopback


def _bearer_matches(request: Request, token: str) -> bool:
    scheme, _, sent = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    # Compare digests: constant time whatever the lengths.
    digest = hashlib.sha256(sent.strip().encode()).digest()
    return hmac.compare_digest(digest, hashlib.sha256(token.encode()).digest())


async def metrics(request: Request) -> Response:
    """Prometheus metrics, only for `Authorization: Bearer $COOP_METRICS_TOKEN` when that is
    set, else only for a local, unforwarded request; anyone else gets 401 or 404."""
    token = get_runtime(request).settings.metrics_token
    if token is not None and not _bearer_matches(request, token):
        return JSONResponse(
            {"error": "metrics_token_required", "message": "Send the metrics bearer token."},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="coop-metrics"'},
        )
    if token is None and not _is_local(request):
        raise NotFoundError()
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def routes() -> list[BaseRoute]:
    return [Route("/healthz", healthz), Route("/metrics", metrics)]
