"""A fake GitHub: the web OAuth flow (github.com) and the REST API subset coop reads.

Web: `GET /login/oauth/authorize` (auto-approves), `POST /login/oauth/access_token`
(authorization_code with optional PKCE, refresh_token for expiring user tokens: access 8 h,
refresh 6 months, a used refresh token stops working, errors as HTTP 200 JSON bodies such as
`bad_refresh_token`, exactly like GitHub). API: `GET /user`, `GET /user/repos?type=owner`,
`GET /users/:login/events/public` (page/per_page with `Link`), and
`DELETE /applications/{client_id}/grant` (basic auth). Every API answer carries
`x-ratelimit-*` headers (reset in epoch seconds). One server plays both hosts: its base URL is
used for COOP_GITHUB_BASE_URL and COOP_GITHUB_API_URL alike.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import secrets
import threading
from collections.abc import Iterator
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

LOGIN = "octo-alice"
ACCESS_LIFETIME = timedelta(hours=8)
REFRESH_LIFETIME = timedelta(days=184)


@dataclass
class Token:
    access: str
    refresh: str | None
    expires_at: datetime | None
    refresh_expires_at: datetime | None
    revoked: bool = False


@dataclass
class Grant:
    redirect_uri: str
    challenge: str | None
    expires_at: datetime


@dataclass
class FakeGitHub:
    url: str = ""
    client_id: str = "Iv1.fakeclientid0001"
    client_secret: str = field(default_factory=lambda: secrets.token_hex(20))
    callback_url: str = ""  # the registered callback; redirect_uri must be it or below it
    expiring_tokens: bool = True
    followers: int = 17
    rate_limit: int = 5000
    rate_remaining: int = 5000
    default_per_page: int = 30
    log: RequestLog = field(default_factory=RequestLog)
    faults: FaultQueue = field(default_factory=FaultQueue)
    grants: dict[str, Grant] = field(default_factory=dict)
    tokens: list[Token] = field(default_factory=list)
    repos: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(30000000000, 13))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- scripting -----------------------------------------------------------------------
    def add_repos(self, count: int, *, private: bool = False, fork: bool = False) -> None:
        for _ in range(count):
            number = next(self._ids)
            self.repos.append(
                {
                    "id": number,
                    "name": f"repo-{number}",
                    "full_name": f"{LOGIN}/repo-{number}",
                    "private": private,
                    "visibility": "private" if private else "public",
                    "fork": fork,
                    "html_url": f"https://github.com/{LOGIN}/repo-{number}",
                    "owner": {"login": LOGIN, "id": 583231},
                    "created_at": _iso(utcnow() - timedelta(days=number % 400)),
                    "pushed_at": _iso(utcnow()),
                    "stargazers_count": number % 50,
                    "forks_count": number % 7,
                    "watchers_count": number % 50,
                }
            )

    def add_events(self, count: int) -> None:
        with self._lock:
            for _ in range(count):
                number = next(self._ids)
                self.events.insert(
                    0,
                    {
                        "id": str(number),
                        "type": ("PushEvent", "WatchEvent", "IssuesEvent")[number % 3],
                        "actor": {"id": 583231, "login": LOGIN},
                        "repo": {"id": 1, "name": "someone/else"},
                        "payload": {"commits": [{"message": "secret-ish commit message"}]},
                        "public": True,
                        "created_at": _iso(utcnow()),
                    },
                )

    def fail_next(self, status: int, *, path: str = "/", times: int = 1, **kw: Any) -> None:
        self.faults.add(Fault(status=status, path=path, times=times, **kw))

    def rate_limit_next(self, *, status: int = 403, reset_in: int = 600, path: str = "/") -> None:
        """A primary rate limit hit: 403 with x-ratelimit-remaining 0 and an epoch reset."""
        headers = self.rate_headers(remaining=0, reset_in=reset_in)
        body = b'{"message":"API rate limit exceeded for user ID 583231.","status":"403"}'
        self.faults.add(Fault(status=status, path=path, headers=headers, body=body))

    def secondary_limit_next(self, *, retry_after: int = 60, path: str = "/") -> None:
        body = b'{"message":"You have exceeded a secondary rate limit."}'
        self.faults.add(
            Fault(status=429, path=path, headers={"retry-after": str(retry_after)}, body=body)
        )

    def malform_next(self, *, path: str = "/") -> None:
        self.faults.add(Fault(status=200, path=path, body=b'{"login": "octo'))

    def issue_token(self) -> Token:
        now = utcnow()
        token = Token(
            access="ghu_" + secrets.token_urlsafe(27),
            refresh="ghr_" + secrets.token_urlsafe(54) if self.expiring_tokens else None,
            expires_at=now + ACCESS_LIFETIME if self.expiring_tokens else None,
            refresh_expires_at=now + REFRESH_LIFETIME if self.expiring_tokens else None,
        )
        self.tokens.append(token)
        return token

    def live_tokens(self) -> list[Token]:
        return [t for t in self.tokens if not t.revoked]

    def rate_headers(self, *, remaining: int | None = None, reset_in: int = 3600) -> dict[str, str]:
        left = self.rate_remaining if remaining is None else remaining
        return {
            "x-ratelimit-limit": str(self.rate_limit),
            "x-ratelimit-remaining": str(left),
            "x-ratelimit-used": str(self.rate_limit - left),
            "x-ratelimit-reset": str(int(utcnow().timestamp()) + reset_in),
            "x-ratelimit-resource": "core",
        }


def _iso(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _oauth_error(request: Request, error: str, description: str) -> Response:
    # GitHub answers token errors with HTTP 200 and an error body.
    body = {
        "error": error,
        "error_description": description,
        "error_uri": "https://docs.github.com/apps/troubleshooting",
    }
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse(body)
    return PlainTextResponse(urlencode(body), media_type="application/x-www-form-urlencoded")


def _token_body(request: Request, token: Token) -> Response:
    body: dict[str, Any] = {"access_token": token.access, "token_type": "bearer", "scope": ""}
    if token.refresh:
        body |= {
            "expires_in": int(ACCESS_LIFETIME.total_seconds()),
            "refresh_token": token.refresh,
            "refresh_token_expires_in": int(REFRESH_LIFETIME.total_seconds()),
        }
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse(body)
    return PlainTextResponse(urlencode(body), media_type="application/x-www-form-urlencoded")


def build_app(fake: FakeGitHub) -> Starlette:
    async def authorize(request: Request) -> Response:
        await record(request, fake.log)
        q = request.query_params
        redirect_uri = q.get("redirect_uri", fake.callback_url)
        if q.get("client_id") != fake.client_id or not redirect_uri.startswith(fake.callback_url):
            return PlainTextResponse(
                "The redirect_uri is not associated with this application.", 400
            )
        code = secrets.token_hex(10)
        fake.grants[code] = Grant(
            redirect_uri, q.get("code_challenge"), utcnow() + timedelta(minutes=10)
        )
        params = {"code": code}
        if "state" in q:
            params["state"] = q["state"]
        return RedirectResponse(f"{redirect_uri}?{urlencode(params)}", status_code=302)

    async def access_token(request: Request) -> Response:
        form = await record(request, fake.log)
        if (faulted := await fault_response(fake.faults, request.url.path)) is not None:
            return faulted
        if form.get("client_id") != fake.client_id or form.get("client_secret") != (
            fake.client_secret
        ):
            return _oauth_error(request, "incorrect_client_credentials", "Bad client.")
        if form.get("grant_type") == "refresh_token":
            return refresh(request, form.get("refresh_token", ""))
        grant = fake.grants.pop(form.get("code", ""), None)
        if grant is None or grant.expires_at < utcnow():
            return _oauth_error(request, "bad_verification_code", "The code is incorrect.")
        if form.get("redirect_uri") and form["redirect_uri"] != grant.redirect_uri:
            return _oauth_error(request, "redirect_uri_mismatch", "Redirect mismatch.")
        if grant.challenge and _challenge(form.get("code_verifier", "")) != grant.challenge:
            return _oauth_error(request, "bad_verification_code", "PKCE failed.")
        return _token_body(request, fake.issue_token())

    def refresh(request: Request, presented: str) -> Response:
        with fake._lock:
            found = next((t for t in fake.tokens if t.refresh and t.refresh == presented), None)
            now = utcnow()
            if (
                found is None
                or found.revoked
                or found.refresh_expires_at is None
                or found.refresh_expires_at < now
            ):
                return _oauth_error(request, "bad_refresh_token", "The refresh token is bad.")
            found.revoked = True  # the used refresh token and its access token stop working
            return _token_body(request, fake.issue_token())

    def bearer(request: Request) -> Token | None:
        auth = request.headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() not in {"bearer", "token"}:
            return None
        found = next((t for t in fake.tokens if t.access == value), None)
        if found is None or found.revoked:
            return None
        if found.expires_at is not None and found.expires_at < utcnow():
            return None
        return found

    async def api_guard(request: Request) -> Response | None:
        await record(request, fake.log)
        if (faulted := await fault_response(fake.faults, request.url.path)) is not None:
            return faulted
        if bearer(request) is None:
            return JSONResponse(
                {"message": "Bad credentials", "status": "401"},
                status_code=401,
                headers=fake.rate_headers(),
            )
        with fake._lock:
            fake.rate_remaining = max(0, fake.rate_remaining - 1)
        return None

    def paged(request: Request, items: list[Any]) -> Response:
        q = request.query_params
        per_page = max(1, min(int(q.get("per_page", fake.default_per_page)), 100))
        page = max(1, int(q.get("page", "1")))
        chunk = items[(page - 1) * per_page : page * per_page]
        headers = fake.rate_headers()
        last = max(1, -(-len(items) // per_page))
        base = f"{request.base_url}".rstrip("/") + request.url.path
        keep = {k: v for k, v in q.items() if k != "page"}
        links = []
        if page < last:
            links.append(f'<{base}?{urlencode({**keep, "page": page + 1})}>; rel="next"')
            links.append(f'<{base}?{urlencode({**keep, "page": last})}>; rel="last"')
        if page > 1:
            links.append(f'<{base}?{urlencode({**keep, "page": 1})}>; rel="first"')
            links.append(f'<{base}?{urlencode({**keep, "page": page - 1})}>; rel="prev"')
        if links:
            headers["link"] = ", ".join(links)
        return JSONResponse(chunk, headers=headers)

    async def user(request: Request) -> Response:
        if (refused := await api_guard(request)) is not None:
            return refused
        return JSONResponse(
            {
                "login": LOGIN,
                "id": 583231,
                "name": "Alice <script>alert(1)</script>",
                "followers": fake.followers,
                "following": 3,
                "public_repos": len([r for r in fake.repos if not r["private"]]),
                "created_at": "2015-01-01T00:00:00Z",
            },
            headers=fake.rate_headers(),
        )

    async def user_repos(request: Request) -> Response:
        if (refused := await api_guard(request)) is not None:
            return refused
        repos = list(fake.repos)
        if request.query_params.get("type", "owner") == "owner":
            repos = [r for r in repos if r["owner"]["login"] == LOGIN]
        return paged(request, repos)

    async def public_events(request: Request) -> Response:
        if (refused := await api_guard(request)) is not None:
            return refused
        if request.path_params["login"] != LOGIN:
            return JSONResponse({"message": "Not Found"}, status_code=404)
        return paged(request, list(fake.events)[:300])

    async def delete_grant(request: Request) -> Response:
        form = await record(request, fake.log)
        if (faulted := await fault_response(fake.faults, request.url.path)) is not None:
            return faulted
        auth = request.headers.get("authorization", "")
        expected = base64.b64encode(f"{fake.client_id}:{fake.client_secret}".encode()).decode()
        if request.path_params["client_id"] != fake.client_id or auth != f"Basic {expected}":
            return JSONResponse({"message": "Not Found"}, status_code=404)
        presented = form.get("access_token", "")
        if not any(t.access == presented for t in fake.tokens):
            return JSONResponse({"message": "Validation Failed"}, status_code=422)
        for token in fake.tokens:  # a grant deletion ends every token of the authorization
            token.revoked = True
        return Response(status_code=204)

    return Starlette(
        routes=[
            Route("/login/oauth/authorize", authorize, methods=["GET"]),
            Route("/login/oauth/access_token", access_token, methods=["POST"]),
            Route("/user", user),
            Route("/user/repos", user_repos),
            Route("/users/{login}/events/public", public_events),
            Route("/applications/{client_id}/grant", delete_grant, methods=["DELETE"]),
        ]
    )


@contextmanager
def running_github(**kwargs: Any) -> Iterator[FakeGitHub]:
    """Serve a fresh fake GitHub on a free loopback port for the duration of the block."""
    fake = FakeGitHub(**kwargs)
    with LiveServer(build_app(fake)) as server:
        fake.url = server.base_url
        yield fake


__all__ = ["LOGIN", "FakeGitHub", "build_app", "running_github"]
