"""The /graphql transport (GraphQL over HTTP, JSON only).

POST only, bearer tokens from the Authorization header only; 401/405/429 are decided before
the body is read, then `Content-Type: application/json` and one operation object per request
(no batches), then the operation pipeline (`coop.api.operation`). Every answer is JSON with
`Cache-Control: no-store`; authenticated ones carry the rate-limit headers. Subscriptions are
not offered: a WebSocket upgrade is closed before it is accepted. GraphiQL is served on
`GET /graphql` (HTML) only in dev mode.
"""

from __future__ import annotations

import json
import logging
import re
from functools import cache
from typing import Any

import strawberry
from starlette.types import Receive, Scope, Send
from strawberry.http.ides import get_graphql_ide_html

from coop.api.backend import Backend
from coop.api.context import ApiContext
from coop.api.errors import Code
from coop.api.operation import Operations, RequestError
from coop.consent.ratelimit import Limiter, MemoryLimiter
from coop.db import RETRY_AFTER_SECONDS, is_unavailable
from coop.errors import DatabaseUnavailableError
from coop.http import jsonbody
from coop.http.bearer import bearer_token

log = logging.getLogger("coop.api")

REALM = b'Bearer realm="coop"'
INVALID_TOKEN = b'Bearer realm="coop", error="invalid_token"'
NO_STORE = (b"cache-control", b"no-store")
JSON_TYPE = (b"content-type", b"application/json")
# GraphiQL (COOP_DEV only) loads its code from coop's own /static/graphiql (never a CDN) and
# runs one inline script.
IDE_CSP = (
    b"content-security-policy",
    b"default-src 'self'; script-src 'self' 'unsafe-inline'; "
    b"style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    b"font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
)
_CDN = re.compile(r"https://unpkg\.com/")


@cache
def ide_page() -> bytes:
    """strawberry's GraphiQL page with every asset served from /static/graphiql (the same
    files, byte for byte: the page's integrity hashes still hold)."""
    return _CDN.sub("/static/graphiql/", get_graphql_ide_html(graphql_ide="graphiql")).encode()


_encode = json.JSONEncoder(separators=(",", ":")).encode


def _error_body(message: str, code: Code, **extra: object) -> bytes:
    error = {"message": message, "extensions": {"code": code.value, **extra}}
    return json.dumps({"errors": [error]}, separators=(",", ":")).encode()


async def _send(
    send: Send,
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]] = (),  # type: ignore[assignment]
    content_type: tuple[bytes, bytes] = JSON_TYPE,
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                content_type,
                (b"content-length", str(len(body)).encode()),
                NO_STORE,
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class GraphQLEndpoint:
    """The ASGI app mounted at /graphql."""

    def __init__(
        self,
        schema: strawberry.Schema,
        backend: Backend,
        *,
        rate_limit: int,
        limiter: Limiter | None = None,
        dev: bool = False,
    ) -> None:
        self.backend = backend
        self.dev = dev
        # `limiter` is the cooperative-wide one (coop.consent.ratelimit); without it, this
        # process's memory. None when limiting is off.
        self.limiter: Limiter | None = limiter or (
            MemoryLimiter(rate_limit) if rate_limit > 0 else None
        )
        # Field suggestions ("Did you mean …") only in dev mode (GQ-11).
        self.operations = Operations(schema, hide_suggestions=not dev)

    async def aclose(self) -> None:
        """Release what the endpoint holds (the rate-limit store's connections)."""
        if self.limiter is not None:
            await self.limiter.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._serve(scope, receive, send)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            # Nothing was sent yet: every answer above is sent in one piece at the end.
            log.warning(
                "database unavailable",
                extra={"error": type(exc).__name__, "code": "database_down"},
            )
            error = DatabaseUnavailableError()
            body = _error_body(error.message, Code.SERVICE_UNAVAILABLE)
            await _send(send, 503, body, [(b"retry-after", str(RETRY_AFTER_SECONDS).encode())])

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        method = scope["method"]
        if method == "GET" and self.dev and b"text/html" in _header(scope, b"accept"):
            page = ide_page()
            await _send(send, 200, page, [IDE_CSP], (b"content-type", b"text/html; charset=utf-8"))
            return
        if method != "POST":
            body = _error_body("Send GraphQL requests with POST.", Code.BAD_REQUEST)
            await _send(send, 405, body, [(b"allow", b"POST")])
            return
        token, sent = bearer_token(scope)
        principal = None
        if token:
            # PostgreSQL: the bearer statement charges the shared bucket in the same trip.
            charge = await self.limiter.bearer_charge() if self.limiter is not None else 0
            principal = await self.backend.authenticate(token, rate_limit=charge)
        if principal is None:
            if sent:
                message, header = "The access token is invalid, expired or revoked.", INVALID_TOKEN
            else:
                message, header = "Send an access token: Authorization: Bearer <token>.", REALM
            body = _error_body(message, Code.UNAUTHENTICATED)
            await _send(send, 401, body, [(b"www-authenticate", header)])
            return
        headers: list[tuple[bytes, bytes]] = []
        if self.limiter is not None:
            decision = principal.rate
            if decision is None:  # counted apart from the bearer statement (memory, Redis)
                decision = await self.limiter.hit(principal.rate_key)
            headers = decision.headers()
            if not decision.allowed:
                body = _error_body(
                    "Too many requests; slow down.",
                    Code.RATE_LIMITED,
                    retry_after=decision.retry_after,
                )
                await _send(send, 429, body, headers)
                return
        request_id = str(scope.get("state", {}).get("request_id", "-"))
        try:
            query, variables, operation_name = _operation_request(scope, await _body(receive))
            context = ApiContext(principal=principal, backend=self.backend, request_id=request_id)
            result = await self.operations.run(
                query,
                variables=variables,
                operation_name=operation_name,
                context=context,
                request_id=request_id,
            )
        except RequestError as exc:
            await _send(send, 400, _error_body(exc.message, Code.BAD_REQUEST), headers)
            return
        await _send(send, 200, _encode(result).encode(), headers)


def _header(scope: Scope, name: bytes) -> bytes:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return b""


async def _body(receive: Receive) -> bytes:
    """The whole request body (the body-limit middleware bounds it while it streams)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise RequestError("The request body ended early.")
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _operation_request(scope: Scope, body: bytes) -> tuple[str, dict[str, Any] | None, str | None]:
    """(query, variables, operationName) from a JSON request body, or RequestError."""
    media_type = _header(scope, b"content-type").split(b";", 1)[0].strip().lower()
    if media_type != b"application/json":
        raise RequestError("Unsupported content type")
    try:
        data = jsonbody.loads(body)
    except jsonbody.JsonRefused as exc:
        raise RequestError(exc.message) from None
    except ValueError:  # UnicodeDecodeError is one
        raise RequestError("Unable to parse request body as JSON") from None
    if isinstance(data, list):
        raise RequestError("Batching is not enabled: send one operation per request.")
    if not isinstance(data, dict):
        raise RequestError("The request body must be a JSON object.")
    query = data.get("query")
    variables = data.get("variables")
    operation_name = data.get("operationName")
    if query is None:
        raise RequestError("No GraphQL query found in the request")
    if not isinstance(query, str):
        raise RequestError("`query` must be a string.")
    if not isinstance(variables, dict | None):
        raise RequestError("`variables` must be an object or null.")
    if not isinstance(operation_name, str | None):
        raise RequestError("`operationName` must be a string or null.")
    if not isinstance(data.get("extensions"), dict | None):
        raise RequestError("`extensions` must be an object or null.")
    return query, variables, operation_name
