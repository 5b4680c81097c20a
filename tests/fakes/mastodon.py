"""A fake Mastodon instance: a real HTTP server speaking the documented API subset coop uses.

docs.joinmastodon.org: `POST /api/v1/apps`, `GET /oauth/authorize` (auto-approves, as if the
account holder clicked "Authorize"), `POST /oauth/token` (authorization_code with PKCE S256),
`POST /oauth/revoke`, `GET /api/v1/accounts/verify_credentials`,
`GET /api/v1/accounts/:id/statuses` (max_id / since_id / min_id, `Link` header), and
`X-RateLimit-Limit/Remaining/Reset` headers (Reset in ISO 8601) with 429 once exhausted.

    with running_mastodon() as fake:
        fake.add_statuses(45)
        fake.url   # http://127.0.0.1:<port>
        fake.log   # every request received
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from coop.types import utcnow
from tests.fakes.server import LiveServer
from tests.fakes.upstream import Fault, FaultQueue, RequestLog, fault_response, record

ACCOUNT_ID = "109000000000000001"


@dataclass
class App:
    client_id: str
    client_secret: str
    name: str
    redirect_uris: list[str]
    scopes: set[str]


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    scopes: set[str]
    expires_at: datetime


@dataclass
class Token:
    client_id: str
    scopes: set[str]
    revoked: bool = False


@dataclass
class Status:
    id: str
    created_at: datetime
    content: str
    visibility: str = "public"
    favourites_count: int = 0
    reblogs_count: int = 0
    replies_count: int = 0
    reblog: bool = False

    def as_json(self, base_url: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": self.created_at.isoformat().replace("+00:00", "Z"),
            "in_reply_to_id": None,
            "in_reply_to_account_id": None,
            "sensitive": False,
            "spoiler_text": "",
            "visibility": self.visibility,
            "language": "en",
            "uri": f"{base_url}/users/alice/statuses/{self.id}",
            "url": f"{base_url}/@alice/{self.id}",
            "replies_count": self.replies_count,
            "reblogs_count": self.reblogs_count,
            "favourites_count": self.favourites_count,
            "content": self.content,
            "reblog": {"id": "1", "content": "<p>someone else</p>"} if self.reblog else None,
            "account": {"id": ACCOUNT_ID, "username": "alice", "acct": "alice"},
            "mentions": [],
            "media_attachments": [],
        }


@dataclass
class FakeMastodon:
    """State of one fake instance. Mutate it from tests; the server thread reads it."""

    url: str = ""
    followers_count: int = 42
    rate_limit: int = 300
    rate_remaining: int = 300
    rate_window: timedelta = timedelta(minutes=5)
    auto_approve: bool = True
    send_iss: bool = False
    default_limit: int = 20
    log: RequestLog = field(default_factory=RequestLog)
    faults: FaultQueue = field(default_factory=FaultQueue)
    apps: dict[str, App] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)
    tokens: dict[str, Token] = field(default_factory=dict)
    statuses: list[Status] = field(default_factory=list)
    on_statuses_page: list[Callable[[int], None]] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(110000000000000000, 7))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    pages_served: int = 0
    _reset_at: datetime | None = None

    # -- scripting -----------------------------------------------------------------------
    def add_statuses(self, count: int, **kwargs: Any) -> list[Status]:
        made = []
        with self._lock:
            for _ in range(count):
                number = next(self._ids)
                status = Status(
                    id=str(number),
                    created_at=utcnow(),
                    content=kwargs.get("content", f"<p>Status {number} &amp; more</p>"),
                    visibility=kwargs.get("visibility", "public"),
                    favourites_count=kwargs.get("favourites_count", number % 5),
                    reblogs_count=kwargs.get("reblogs_count", number % 3),
                    replies_count=kwargs.get("replies_count", number % 2),
                    reblog=kwargs.get("reblog", False),
                )
                self.statuses.append(status)
                made.append(status)
        return made

    def fail_next(self, status: int, *, path: str = "/api/", times: int = 1, **kw: Any) -> None:
        self.faults.add(Fault(status=status, path=path, times=times, **kw))

    def throttle_next(self, *, reset_in: float = 120, path: str = "/api/") -> None:
        """A 429 as Mastodon sends it: X-RateLimit-Remaining 0 and an ISO 8601 reset time."""
        headers = self.rate_headers(remaining=0, reset_at=utcnow() + timedelta(seconds=reset_in))
        self.faults.add(
            Fault(status=429, path=path, headers=headers, body=b'{"error":"Too many requests"}')
        )

    def malform_next(self, *, path: str = "/api/") -> None:
        self.faults.add(Fault(status=200, path=path, body=b'[{"id": "1", "created_at"'))

    def exhaust_rate_limit(self, *, reset_in: float = 300) -> None:
        self.rate_remaining = 0
        self._reset_at = utcnow() + timedelta(seconds=reset_in)

    def revoke_all(self) -> None:
        for token in self.tokens.values():
            token.revoked = True

    def mint_code(self, client_id: str, redirect_uri: str, verifier_challenge: str) -> str:
        code = secrets.token_urlsafe(24)
        self.grants[code] = Grant(
            client_id, redirect_uri, verifier_challenge, {"read"}, utcnow() + timedelta(minutes=10)
        )
        return code

    def issue_token(self) -> tuple[App, str]:
        """An app and an access token as if the OAuth dance had happened (connector tests)."""
        app = App(
            secrets.token_urlsafe(32),
            secrets.token_urlsafe(32),
            "coop",
            ["http://127.0.0.1/cb"],
            {"read:accounts", "read:statuses"},
        )
        self.apps[app.client_id] = app
        access = secrets.token_urlsafe(32)
        self.tokens[access] = Token(app.client_id, app.scopes)
        return app, access

    def live_tokens(self) -> list[str]:
        return [t for t, info in self.tokens.items() if not info.revoked]

    # -- rate limiting ---------------------------------------------------------------------
    def rate_headers(
        self, *, remaining: int | None = None, reset_at: datetime | None = None
    ) -> dict[str, str]:
        reset = reset_at or self._reset_at or (utcnow() + self.rate_window)
        return {
            "X-RateLimit-Limit": str(self.rate_limit),
            "X-RateLimit-Remaining": str(self.rate_remaining if remaining is None else remaining),
            "X-RateLimit-Reset": reset.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        }

    def spend(self) -> bool:
        """Count one API call. False when the window is exhausted (answer 429)."""
        with self._lock:
            if self._reset_at is not None and utcnow() >= self._reset_at:
                self.rate_remaining = self.rate_limit
                self._reset_at = None
            if self.rate_remaining <= 0:
                return False
            self.rate_remaining -= 1
            if self._reset_at is None:
                self._reset_at = utcnow() + self.rate_window
            return True


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _error(status: int, error: str, description: str = "") -> JSONResponse:
    body = {"error": error}
    if description:
        body["error_description"] = description
    return JSONResponse(body, status_code=status)


def build_app(fake: FakeMastodon) -> Starlette:
    async def apps(request: Request) -> Response:
        form = await record(request, fake.log)
        if (faulted := await fault_response(fake.faults, request.url.path)) is not None:
            return faulted
        uris = form.get("redirect_uris", "").split()
        if not form.get("client_name") or not uris:
            return JSONResponse({"error": "Validation failed: missing fields"}, status_code=422)
        app = App(
            client_id=secrets.token_urlsafe(32),
            client_secret=secrets.token_urlsafe(32),
            name=form["client_name"],
            redirect_uris=uris,
            scopes=set(form.get("scopes", "read").split()),
        )
        fake.apps[app.client_id] = app
        return JSONResponse(
            {
                "id": str(len(fake.apps)),
                "name": app.name,
                "website": form.get("website"),
                "scopes": sorted(app.scopes),
                "redirect_uri": "\n".join(uris),
                "redirect_uris": uris,
                "client_id": app.client_id,
                "client_secret": app.client_secret,
                "client_secret_expires_at": 0,
            }
        )

    async def authorize(request: Request) -> Response:
        await record(request, fake.log)
        q = request.query_params
        app = fake.apps.get(q.get("client_id", ""))
        redirect_uri = q.get("redirect_uri", "")
        if app is None or redirect_uri not in app.redirect_uris:
            return PlainTextResponse("The redirect uri included is not valid.", status_code=400)
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return PlainTextResponse("PKCE S256 required by this fake.", status_code=400)
        params: dict[str, str] = {}
        if fake.auto_approve:
            scopes = set(q.get("scope", "read").split())
            code = secrets.token_urlsafe(24)
            fake.grants[code] = Grant(
                app.client_id,
                redirect_uri,
                q["code_challenge"],
                scopes,
                utcnow() + timedelta(minutes=10),
            )
            params["code"] = code
        else:
            params["error"] = "access_denied"
        if "state" in q:
            params["state"] = q["state"]
        if fake.send_iss:
            params["iss"] = fake.url
        return RedirectResponse(f"{redirect_uri}?{urlencode(params)}", status_code=302)

    async def token(request: Request) -> Response:
        form = await record(request, fake.log)
        if (faulted := await fault_response(fake.faults, request.url.path)) is not None:
            return faulted
        app = fake.apps.get(form.get("client_id", ""))
        if app is None or not secrets.compare_digest(
            app.client_secret, form.get("client_secret", "")
        ):
            return _error(401, "invalid_client", "Client authentication failed")
        if form.get("grant_type") != "authorization_code":
            return _error(400, "unsupported_grant_type")
        grant = fake.grants.pop(form.get("code", ""), None)
        if (
            grant is None
            or grant.client_id != app.client_id
            or grant.expires_at < utcnow()
            or grant.redirect_uri != form.get("redirect_uri")
        ):
            return _error(400, "invalid_grant", "The provided authorization grant is invalid")
        if _challenge(form.get("code_verifier", "")) != grant.challenge:
            return _error(400, "invalid_grant", "PKCE verification failed")
        access = secrets.token_urlsafe(32)
        fake.tokens[access] = Token(app.client_id, grant.scopes)
        return JSONResponse(
            {
                "access_token": access,
                "token_type": "Bearer",
                "scope": " ".join(sorted(grant.scopes)),
                "created_at": int(utcnow().timestamp()),
            }
        )

    async def revoke(request: Request) -> Response:
        form = await record(request, fake.log)
        if (faulted := await fault_response(fake.faults, request.url.path)) is not None:
            return faulted
        app = fake.apps.get(form.get("client_id", ""))
        if app is None or app.client_secret != form.get("client_secret"):
            return _error(403, "unauthorized_client")
        found = fake.tokens.get(form.get("token", ""))
        if found is not None and found.client_id == app.client_id:
            found.revoked = True
        return JSONResponse({})

    def bearer(request: Request) -> Token | None:
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            return None
        found = fake.tokens.get(auth[7:])
        return None if found is None or found.revoked else found

    async def api_guard(request: Request) -> Response | None:
        await record(request, fake.log)
        if (faulted := await fault_response(fake.faults, request.url.path)) is not None:
            return faulted
        if not fake.spend():
            return JSONResponse(
                {"error": "Too many requests"}, status_code=429, headers=fake.rate_headers()
            )
        if bearer(request) is None:
            return JSONResponse(
                {"error": "The access token is invalid"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="Doorkeeper", error="invalid_token"'},
            )
        return None

    async def verify_credentials(request: Request) -> Response:
        if (refused := await api_guard(request)) is not None:
            return refused
        own = [s for s in fake.statuses if not s.reblog]
        return JSONResponse(
            {
                "id": ACCOUNT_ID,
                "username": "alice",
                "acct": "alice",
                "display_name": "Alice <img src=x onerror=alert(1)>",
                "followers_count": fake.followers_count,
                "following_count": 7,
                "statuses_count": len(own),
                "url": f"{fake.url}/@alice",
                "created_at": "2022-11-01T00:00:00.000Z",
            },
            headers=fake.rate_headers(),
        )

    async def account_statuses(request: Request) -> Response:
        if (refused := await api_guard(request)) is not None:
            return refused
        if request.path_params["id"] != ACCOUNT_ID:
            return JSONResponse({"error": "Record not found"}, status_code=404)
        q = request.query_params
        limit = max(1, min(int(q.get("limit", fake.default_limit)), 40))
        page = _page(fake, q, limit)
        fake.pages_served += 1
        for hook in list(fake.on_statuses_page):
            hook(fake.pages_served)
        headers = fake.rate_headers()
        link = _link(request, page, limit)
        if link:
            headers["Link"] = link
        return JSONResponse([s.as_json(fake.url) for s in page], headers=headers)

    return Starlette(
        routes=[
            Route("/api/v1/apps", apps, methods=["POST"]),
            Route("/oauth/authorize", authorize, methods=["GET"]),
            Route("/oauth/token", token, methods=["POST"]),
            Route("/oauth/revoke", revoke, methods=["POST"]),
            Route("/api/v1/accounts/verify_credentials", verify_credentials),
            Route("/api/v1/accounts/{id}/statuses", account_statuses),
        ]
    )


def _page(fake: FakeMastodon, q: Any, limit: int) -> list[Status]:
    """Mastodon's `to_a_paginated_by_id`: newest first, except that `min_id` takes the
    oldest `limit` items above it (then still answers newest first)."""
    items = [s for s in fake.statuses if not (s.reblog and q.get("exclude_reblogs") == "true")]
    items.sort(key=lambda s: int(s.id), reverse=True)
    if q.get("max_id"):
        items = [s for s in items if int(s.id) < int(q["max_id"])]
    if q.get("min_id"):
        above = [s for s in reversed(items) if int(s.id) > int(q["min_id"])]
        return list(reversed(above[:limit]))
    if q.get("since_id"):
        items = [s for s in items if int(s.id) > int(q["since_id"])]
    return items[:limit]


def _link(request: Request, page: list[Status], limit: int) -> str:
    if not page:
        return ""
    base = f"{request.base_url}".rstrip("/") + request.url.path
    extra = {"limit": str(limit)}
    if "exclude_reblogs" in request.query_params:
        extra["exclude_reblogs"] = request.query_params["exclude_reblogs"]
    prev = f'<{base}?{urlencode({**extra, "min_id": page[0].id})}>; rel="prev"'
    if len(page) < limit:
        return prev
    following = f'<{base}?{urlencode({**extra, "max_id": page[-1].id})}>; rel="next"'
    return f"{following}, {prev}"


@contextmanager
def running_mastodon(**kwargs: Any) -> Iterator[FakeMastodon]:
    """Serve a fresh fake instance on a free loopback port for the duration of the block."""
    fake = FakeMastodon(**kwargs)
    with LiveServer(build_app(fake)) as server:
        fake.url = server.base_url
        yield fake


__all__ = ["ACCOUNT_ID", "FakeMastodon", "Status", "build_app", "running_mastodon"]
