"""Pure-ASGI middleware: request ids and logging, body limits, cross-site refusal, headers."""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import Counter, Histogram
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coop.config import Settings
from coop.errors import PayloadTooLargeError
from coop.http.auth import SessionMiddleware

log = logging.getLogger("coop.http")

REQUESTS = Counter("coop_http_requests_total", "HTTP responses", ["method", "status"])
LATENCY = Histogram("coop_http_request_seconds", "HTTP request duration", ["method"])

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Endpoints called server-to-server or with bearer tokens: no cookies are honoured there, so
# cross-site requests are expected and harmless (they authenticate themselves).
CROSS_SITE_OK = ("/graphql", "/oauth/token", "/oauth/revoke", "/oauth/introspect")

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def _json_response(status: int, code: str, message: str) -> tuple[dict[str, object], bytes]:
    body = json.dumps({"error": code, "message": message}).encode()
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    return start, body


class RequestContextMiddleware:
    """Gives each request an id (echoed as X-Request-Id), logs one line, records metrics.

    The log line holds the method, the path without its query string (which may carry codes
    or tokens), the status and the duration: never headers, bodies or member data.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            method = scope["method"]
            REQUESTS.labels(method, str(status)).inc()
            LATENCY.labels(method).observe(elapsed)
            log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": method,
                    "path": scope["path"],
                    "status": status,
                    "ms": round(elapsed * 1000, 1),
                },
            )


class BodyLimitMiddleware:
    """Refuses bodies over the limit with 413, by Content-Length before reading, else while
    streaming. `limits` maps path prefixes (e.g. upload routes) to larger allowances."""

    def __init__(self, app: ASGIApp, default: int, limits: Sequence[tuple[str, int]] = ()) -> None:
        self.app = app
        self.default = default
        self.limits = sorted(limits, key=lambda item: -len(item[0]))

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.limits:
            if path.startswith(prefix):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > limit:
                    start, body = _json_response(
                        413, "payload_too_large", f"The request body exceeds {limit} bytes."
                    )
                    await send(start)
                    await send({"type": "http.response.body", "body": body})
                    return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLargeError(f"The request body exceeds {limit} bytes.")
            return message

        await self.app(scope, limited_receive, send)


class CrossSiteGuardMiddleware:
    """Refuses state-changing requests sent from another site (Fetch Metadata and Origin).

    This is the first CSRF layer; the synchronizer token checked by every form is the second.
    """

    def __init__(self, app: ASGIApp, issuer: str) -> None:
        self.app = app
        parts = urlsplit(issuer)
        self.origin = f"{parts.scheme}://{parts.netloc}".encode()

    def allowed(self, scope: Scope) -> bool:
        if scope["method"] in SAFE_METHODS or scope["path"].startswith(CROSS_SITE_OK):
            return True
        headers = dict(scope.get("headers", []))
        site = headers.get(b"sec-fetch-site")
        if site is not None and site not in (b"same-origin", b"none"):
            return False
        origin = headers.get(b"origin")
        return origin is None or origin == self.origin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.allowed(scope):
            start, body = _json_response(
                403, "cross_site_request", "Cross-site requests cannot change anything here."
            )
            await send(start)
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


class SecurityHeadersMiddleware:
    """Adds the headers every response carries; a response may set its own CSP or caching."""

    def __init__(self, app: ASGIApp, https: bool) -> None:
        self.app = app
        self.base: list[tuple[bytes, bytes]] = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"same-origin"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
        ]
        if https:
            self.base.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in self.base if h[0] not in present)
                if b"content-security-policy" not in present:
                    headers.append((b"content-security-policy", CSP.encode()))
                if b"cache-control" not in present and not static:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_wrapper)


class ErrorBoundary:
    """Turns an exception raised before the response started into the response the app's
    exception `handlers` give (what Starlette's two exception middlewares do for the main
    stack); after the response started, the exception propagates (the server closes the
    connection)."""

    def __init__(self, app: ASGIApp, handlers: Mapping[Any, Any]) -> None:
        self.app = app
        self.handlers = handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def sender(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self.app(scope, receive, sender)
        except Exception as exc:
            handler = next(
                (self.handlers[cls] for cls in type(exc).__mro__ if cls in self.handlers), None
            )
            if started or handler is None:
                raise
            response = await handler(Request(scope, receive), exc)
            await response(scope, receive, send)


def api_stack(settings: Settings, app: ASGIApp, handlers: Mapping[Any, Any]) -> ASGIApp:
    """The short lane for bearer-token API requests (/graphql): request id and log line,
    security headers, body limit and error responses, without the web-only layers (sessions,
    cross-site guard, routing) those requests never use (docs/benchmarks.md)."""
    return RequestContextMiddleware(
        SecurityHeadersMiddleware(
            BodyLimitMiddleware(ErrorBoundary(app, handlers), default=settings.max_body_bytes),
            https=settings.secure_cookies,
        )
    )


def middleware_stack(
    settings: Settings,
    upload_prefixes: Sequence[str] = (),
    fault_handlers: Mapping[Any, Any] | None = None,
) -> list[Middleware]:
    """Outermost first: request context, headers, cross-site guard, body limit, a boundary
    that answers database faults raised by the layers below it (the session lookup
    included) with `fault_handlers`, session."""
    return [
        Middleware(RequestContextMiddleware),
        Middleware(SecurityHeadersMiddleware, https=settings.secure_cookies),
        Middleware(CrossSiteGuardMiddleware, issuer=settings.issuer),
        Middleware(
            BodyLimitMiddleware,
            default=settings.max_body_bytes,
            limits=[(p, settings.max_upload_bytes) for p in upload_prefixes],
        ),
        Middleware(ErrorBoundary, handlers=fault_handlers or {}),
        Middleware(SessionMiddleware),
    ]
