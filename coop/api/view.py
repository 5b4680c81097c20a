"""The /graphql transport: POST only, bearer tokens from the Authorization header only,
401/405/429 decided before any GraphQL work, rate-limit headers, `Cache-Control: no-store`.

Subscriptions are not offered: a WebSocket upgrade is closed before it is accepted (403).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send
from strawberry.asgi import GraphQL

from coop.api.backend import Backend, Principal
from coop.api.context import ApiContext
from coop.api.errors import Code
from coop.api.ratelimit import Decision, RateLimiter
from coop.api.schema import CoopSchema
from coop.http.bearer import bearer_token

REALM = b'Bearer realm="coop"'
INVALID_TOKEN = b'Bearer realm="coop", error="invalid_token"'
NO_STORE = (b"cache-control", b"no-store")
# GraphiQL (COOP_DEV only) loads its code from unpkg and runs one inline script.
IDE_CSP = (
    b"content-security-policy",
    b"default-src 'self'; script-src 'self' 'unsafe-inline' https://unpkg.com; "
    b"style-src 'self' 'unsafe-inline' https://unpkg.com; img-src 'self' data: https://unpkg.com; "
    b"font-src 'self' data: https://unpkg.com; connect-src 'self'; frame-ancestors 'none'",
)


def _error_body(message: str, code: Code, **extra: Any) -> bytes:
    error = {"message": message, "extensions": {"code": code.value, **extra}}
    return json.dumps({"errors": [error]}, separators=(",", ":")).encode()


async def _send(
    send: Send,
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]] = (),  # type: ignore[assignment]
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                NO_STORE,
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _StrawberryView(GraphQL[ApiContext, None]):
    """strawberry's ASGI view, run with the context the endpoint already built."""

    async def render_json_error(self, exc: HTTPException) -> Response:
        return Response(
            _error_body(exc.reason, Code.BAD_REQUEST),
            status_code=exc.status_code,
            media_type="application/json",
        )


class GraphQLEndpoint:
    """The ASGI app mounted at /graphql."""

    def __init__(
        self,
        schema: CoopSchema,
        backend: Backend,
        *,
        rate_limit: int,
        dev: bool = False,
        now: Callable[[], float] | None = None,
    ) -> None:
        self.backend = backend
        self.dev = dev
        self.limiter = RateLimiter(rate_limit) if now is None else RateLimiter(rate_limit, now=now)
        self.view = _StrawberryView(
            schema,
            graphql_ide="graphiql" if dev else None,
            allow_queries_via_get=False,
            multipart_uploads_enabled=False,
            subscription_protocols=(),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        method = scope["method"]
        if method == "GET" and self.dev and _wants_html(scope):
            await self._run(scope, receive, send, None, None)
            return
        if method != "POST":
            body = _error_body("Send GraphQL requests with POST.", Code.BAD_REQUEST)
            await _send(send, 405, body, [(b"allow", b"POST")])
            return
        token, sent = bearer_token(scope)
        principal = await self.backend.authenticate(token) if token else None
        if principal is None:
            if sent:
                message, header = "The access token is invalid, expired or revoked.", INVALID_TOKEN
            else:
                message, header = "Send an access token: Authorization: Bearer <token>.", REALM
            body = _error_body(message, Code.UNAUTHENTICATED)
            await _send(send, 401, body, [(b"www-authenticate", header)])
            return
        decision: Decision | None = None
        if self.limiter.enabled:
            decision = self.limiter.hit(principal.rate_key)
            if not decision.allowed:
                body = _error_body(
                    "Too many requests; slow down.",
                    Code.RATE_LIMITED,
                    retry_after=decision.retry_after,
                )
                await _send(send, 429, body, decision.headers())
                return
        await self._run(scope, receive, send, principal, decision)

    async def _run(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        principal: Principal | None,
        decision: Decision | None,
    ) -> None:
        extra = [NO_STORE, *(decision.headers() if decision else [])]
        if principal is None:  # the dev IDE page
            extra.append(IDE_CSP)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"
                ]
                message = {**message, "headers": headers + extra}
            await send(message)

        request = Request(scope, receive)
        request_id = str(scope.get("state", {}).get("request_id", "-"))
        try:
            if principal is None:  # the dev IDE page only
                response = await self.view.run(request)
            else:
                context = ApiContext(
                    principal=principal, backend=self.backend, request_id=request_id
                )
                response = await self.view.run(request, context=context)
        except HTTPException as exc:
            response = await self.view.render_json_error(exc)
        await response(scope, receive, send_with_headers)


def _wants_html(scope: Scope) -> bool:
    for key, value in scope.get("headers", []):
        if key == b"accept":
            return b"text/html" in value
    return False
