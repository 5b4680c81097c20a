"""Who is calling: the session cookie -> Member, the Actor type, and the login gates.

Every request that carries a session cookie is resolved once, by `SessionMiddleware`, before
routing (so templates and error pages know the member without awaiting anything); handlers
then call `current_member`, `require_member` or `require_recent_auth`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal
from urllib.parse import unquote, urlsplit

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coop.config import Settings
from coop.errors import LoginRequiredError, ReauthRequiredError
from coop.http.runtime import get_runtime
from coop.members import sessions
from coop.members.models import Member, WebSession
from coop.types import utcnow

SESSION_COOKIE = "coop_session"
SECURE_SESSION_COOKIE = "__Host-coop_session"
_STATE_KEY = "coop_auth"


@dataclass(frozen=True)
class Actor:
    """Who performs a request: a member through a browser session or through an app's token."""

    member_id: uuid.UUID
    session_id: uuid.UUID | None
    kind: Literal["session", "token"]
    scopes: frozenset[str] = frozenset()


def session_cookie_name(settings: Settings) -> str:
    # The __Host- prefix requires Secure, which browsers refuse to set over plain http, so a
    # local http dev server uses the unprefixed name (everything else about the cookie is equal).
    return SECURE_SESSION_COOKIE if settings.secure_cookies else SESSION_COOKIE


def set_session_cookie(response: Response, *, settings: Settings, token: str) -> None:
    """HttpOnly, SameSite=Lax, Path=/, no Domain; Secure under https (WS-01).

    Max-Age is the absolute lifetime, set once at login and never re-issued (WS-04).
    """
    response.set_cookie(
        session_cookie_name(settings),
        token,
        max_age=settings.session_absolute_seconds,
        path="/",
        secure=settings.secure_cookies,
        httponly=True,
        samesite="lax",
    )


def clear_session_cookie(response: Response, *, settings: Settings) -> None:
    response.delete_cookie(
        session_cookie_name(settings),
        path="/",
        secure=settings.secure_cookies,
        httponly=True,
        samesite="lax",
    )


def session_token(conn: HTTPConnection) -> str | None:
    return conn.cookies.get(session_cookie_name(get_runtime(conn).settings)) or None


async def current_session(conn: HTTPConnection) -> tuple[Member, WebSession] | None:
    """The member and session of this request (resolved once, then cached on the request)."""
    state = conn.scope.setdefault("state", {})
    if _STATE_KEY in state:
        cached: tuple[Member, WebSession] | None = state[_STATE_KEY]
        return cached
    token = session_token(conn)
    resolved = None
    if token:
        runtime = get_runtime(conn)
        resolved = await sessions.resolve(
            vault=runtime.vault, settings=runtime.settings, token=token
        )
    state[_STATE_KEY] = resolved
    return resolved


def cached_session(conn: HTTPConnection) -> tuple[Member, WebSession] | None:
    """The session already resolved for this request, without touching the database."""
    cached = conn.scope.get("state", {}).get(_STATE_KEY)
    return cached if isinstance(cached, tuple) else None


def forget_session(conn: HTTPConnection) -> None:
    """After login or logout: the cached resolution no longer describes this browser."""
    conn.scope.setdefault("state", {}).pop(_STATE_KEY, None)


async def current_member(conn: HTTPConnection) -> Member | None:
    resolved = await current_session(conn)
    return resolved[0] if resolved else None


async def current_actor(conn: HTTPConnection) -> Actor | None:
    resolved = await current_session(conn)
    if resolved is None:
        return None
    member, session = resolved
    return Actor(member_id=member.id, session_id=session.id, kind="session")


def _here(request: Request) -> str:
    if request.method in ("GET", "HEAD"):
        query = request.url.query
        return request.url.path + (f"?{query}" if query else "")
    return request.url.path


async def require_member(request: Request, *, next_path: str | None = None) -> Member:
    """The logged-in member, or LoginRequiredError (the web answers 303 to /login?next=...).

    `next_path` defaults to this page for GET and to "/" for other methods (a form post cannot
    be replayed after logging in).
    """
    member = await current_member(request)
    if member is None:
        default = _here(request) if request.method in ("GET", "HEAD") else "/"
        raise LoginRequiredError(next_path=safe_next_path(next_path or default))
    return member


async def require_recent_auth(
    request: Request, *, max_age_seconds: int = 600, next_path: str | None = None
) -> Member:
    """Step-up for destructive actions (WS-08): the password must have been entered within
    `max_age_seconds`, else ReauthRequiredError (303 to /reauth?next=...).

    `next_path` defaults to this path: for a POST, its GET should show the confirmation again.
    """
    member = await require_member(request, next_path=next_path)
    resolved = await current_session(request)
    assert resolved is not None
    session = resolved[1]
    if utcnow() - session.reauthenticated_at > timedelta(seconds=max_age_seconds):
        raise ReauthRequiredError(next_path=safe_next_path(next_path or _here(request)))
    return member


def safe_next_path(value: str | None) -> str:
    """`value` when it is a same-origin path ("/x..."), else "/" (WS-06: no open redirect).

    Refuses scheme-relative ("//host"), backslash ("/\\host") and control-character tricks,
    also when percent-encoded, since browsers and proxies may decode them before use.
    """
    if not value or len(value) > 2048:
        return "/"
    candidates = [value]
    decoded = value
    for _ in range(3):  # catch double and triple encoding too
        decoded = unquote(decoded)
        candidates.append(decoded)
    for text in candidates:
        if not text.startswith("/") or text.startswith(("//", "/\\")):
            return "/"
        if "\\" in text or any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
            return "/"
        parts = urlsplit(text)
        if parts.scheme or parts.netloc:
            return "/"
    return value


class SessionMiddleware:
    """Resolves the session cookie once per request, before routing and error handling.

    A cookie whose session is unknown or timed out is deleted on the response.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        token = session_token(conn)
        if not token:
            await self.app(scope, receive, send)
            return
        stale = await current_session(conn) is None
        if not stale:
            await self.app(scope, receive, send)
            return
        settings = get_runtime(conn).settings
        name = session_cookie_name(settings).encode()

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                sets_cookie = any(
                    k.lower() == b"set-cookie" and v.startswith(name + b"=") for k, v in headers
                )
                if not sets_cookie:
                    expired = Response()
                    clear_session_cookie(expired, settings=settings)
                    headers.extend((k, v) for k, v in expired.raw_headers if k == b"set-cookie")
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_wrapper)
