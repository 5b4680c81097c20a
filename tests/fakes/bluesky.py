"""A fake Bluesky: one real HTTP server playing the handle resolver, the PLC directory, a did:web
host and the member's PDS, speaking the XRPC subset coop uses (docs.bsky.app, atproto.com).

- `GET /xrpc/com.atproto.identity.resolveHandle?handle=` -> `{"did"}` (400 when unknown)
- `GET /{did}` (PLC directory) and `GET /.well-known/did.json` (did:web) -> the DID document
- `POST /xrpc/com.atproto.server.createSession|refreshSession|deleteSession`
- `GET /xrpc/app.bsky.actor.getProfile`, `GET /xrpc/app.bsky.feed.getAuthorFeed` (newest
  first, `limit` <= 100, an opaque time-based `cursor`), with `RateLimit-Limit/Remaining/Reset`
  headers (reset in epoch seconds) and 429 once exhausted
- expired access tokens answer 400 `ExpiredToken`, as the PDS does; refresh tokens rotate
- OAuth (tests/fakes/bluesky_oauth.py): the PDS's protected-resource metadata and a second
  server playing the authorization server (`fake.auth`); XRPC calls with `Authorization: DPoP`
  are checked there

    with running_bluesky() as fake:
        fake.add_posts(3)
        fake.url   # http://127.0.0.1:<port>
"""

from __future__ import annotations

import itertools
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from coop.types import utcnow
from tests.fakes.bluesky_oauth import (
    FakeAuth,
    build_entryway,
    check_resource_request,
    protected_resource,
)
from tests.fakes.server import LiveServer
from tests.fakes.upstream import Fault, FaultQueue, RequestLog, fault_response, record

DID = "did:plc:abcdefghijklmnopqrstuvwx"
HANDLE = "alice.test"
PASSWORD = "abcd-efgh-ijkl-mnop"
OTHER_DID = "did:plc:zzzzzzzzzzzzzzzzzzzzzzzz"
OTHER_HANDLE = "bob.test"


def _z(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Post:
    rkey: str
    created_at: datetime
    text: str
    likes: int = 0
    reposts: int = 0
    replies: int = 0
    quotes: int = 0
    author: str = DID
    reposted_at: datetime | None = None  # set: the member reposted this (someone else's) post
    reply_to_other: bool = False
    pinned: bool = False

    @property
    def uri(self) -> str:
        return f"at://{self.author}/app.bsky.feed.post/{self.rkey}"

    @property
    def shown_at(self) -> datetime:
        return self.reposted_at or self.created_at

    def as_item(self) -> dict[str, Any]:
        handle = HANDLE if self.author == DID else OTHER_HANDLE
        record: dict[str, Any] = {
            "$type": "app.bsky.feed.post",
            "text": self.text,
            "createdAt": _z(self.created_at),
            "langs": ["en"],
        }
        item: dict[str, Any] = {
            "post": {
                "uri": self.uri,
                "cid": "bafyrei" + self.rkey,
                "author": {"did": self.author, "handle": handle, "displayName": handle},
                "record": record,
                "replyCount": self.replies,
                "repostCount": self.reposts,
                "likeCount": self.likes,
                "quoteCount": self.quotes,
                "indexedAt": _z(self.created_at),
                "labels": [],
            }
        }
        if self.reply_to_other:
            parent = {
                "$type": "app.bsky.feed.defs#postView",
                "uri": f"at://{OTHER_DID}/app.bsky.feed.post/parent",
                "author": {"did": OTHER_DID, "handle": OTHER_HANDLE},
                "record": {"text": "the parent, by someone else"},
            }
            record["reply"] = {"root": {"uri": parent["uri"]}, "parent": {"uri": parent["uri"]}}
            item["reply"] = {"root": parent, "parent": parent}
        if self.reposted_at is not None:
            item["reason"] = {
                "$type": "app.bsky.feed.defs#reasonRepost",
                "by": {"did": DID, "handle": HANDLE},
                "indexedAt": _z(self.reposted_at),
            }
        if self.pinned:
            item["reason"] = {"$type": "app.bsky.feed.defs#reasonPin"}
        return item


@dataclass
class Session:
    did: str
    refresh: str
    expired: bool = False


@dataclass
class FakeBluesky:
    """State of the fake. Mutate it from tests; the server thread reads it."""

    url: str = ""
    handle: str = HANDLE
    password: str = PASSWORD
    followers: int = 17
    did_web: bool = False  # the account's DID is did:web on this host instead of did:plc
    aka_handle: str | None = None  # what the DID document claims (default: `handle`)
    pds_endpoint: str | None = None  # what the DID document names (default: this server)
    rate_limit: int = 3000
    rate_remaining: int = 3000
    log: RequestLog = field(default_factory=RequestLog)
    faults: FaultQueue = field(default_factory=FaultQueue)
    posts: list[Post] = field(default_factory=list)
    sessions: dict[str, Session] = field(default_factory=dict)  # access token -> session
    refresh_tokens: set[str] = field(default_factory=set)
    on_feed_page: list[Callable[[int], None]] = field(default_factory=list)
    pages_served: int = 0
    auth: FakeAuth = field(default_factory=FakeAuth)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _reset_at: datetime | None = None

    @property
    def did(self) -> str:
        if self.did_web:
            return "did:web:" + self.url.removeprefix("http://").replace(":", "%3A")
        return DID

    # -- scripting -------------------------------------------------------------------------
    def add_posts(self, count: int, *, start: datetime | None = None, **kwargs: Any) -> list[Post]:
        made = []
        with self._lock:
            for _ in range(count):
                number = next(self._ids)
                created = (start or utcnow()) + timedelta(seconds=number)
                created = created.replace(microsecond=created.microsecond // 1000 * 1000)
                post = Post(
                    rkey=f"3k{number:011d}",
                    created_at=created,
                    text=kwargs.get("text", f"Post {number} ☀ café"),
                    likes=kwargs.get("likes", number % 5),
                    reposts=kwargs.get("reposts", number % 3),
                    replies=kwargs.get("replies", number % 2),
                    quotes=kwargs.get("quotes", 0),
                    author=kwargs.get("author", self.did),
                    reposted_at=kwargs.get("reposted_at"),
                    reply_to_other=kwargs.get("reply_to_other", False),
                    pinned=kwargs.get("pinned", False),
                )
                self.posts.append(post)
                made.append(post)
        return made

    def log_in(self) -> tuple[str, str]:
        """An access and a refresh token as if createSession had happened."""
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        self.sessions[access] = Session(self.did, refresh)
        self.refresh_tokens.add(refresh)
        return access, refresh

    def expire_access_tokens(self) -> None:
        for session in self.sessions.values():
            session.expired = True

    def expire_refresh_tokens(self) -> None:
        self.expire_access_tokens()
        self.refresh_tokens.clear()

    def fail_next(self, status: int, *, path: str = "/xrpc/", times: int = 1, **kw: Any) -> None:
        self.faults.add(Fault(status=status, path=path, times=times, **kw))

    def throttle_next(self, *, reset_in: int = 120, path: str = "/xrpc/app.bsky.feed") -> None:
        headers = self.rate_headers(remaining=0, reset_at=utcnow() + timedelta(seconds=reset_in))
        body = b'{"error":"RateLimitExceeded","message":"Rate Limit Exceeded"}'
        self.faults.add(Fault(status=429, path=path, headers=headers, body=body))

    def live_refresh_tokens(self) -> set[str]:
        return set(self.refresh_tokens)

    # -- rate limiting -----------------------------------------------------------------------
    def rate_headers(
        self, *, remaining: int | None = None, reset_at: datetime | None = None
    ) -> dict[str, str]:
        reset = reset_at or self._reset_at or (utcnow() + timedelta(minutes=5))
        return {
            "RateLimit-Limit": str(self.rate_limit),
            "RateLimit-Remaining": str(self.rate_remaining if remaining is None else remaining),
            "RateLimit-Reset": str(int(reset.timestamp())),
            "RateLimit-Policy": f"{self.rate_limit};w=300",
        }

    def spend(self) -> bool:
        with self._lock:
            if self._reset_at is not None and utcnow() >= self._reset_at:
                self.rate_remaining, self._reset_at = self.rate_limit, None
            if self.rate_remaining <= 0:
                return False
            self.rate_remaining -= 1
            if self._reset_at is None:
                self._reset_at = utcnow() + timedelta(minutes=5)
            return True

    def document(self) -> dict[str, Any]:
        return {
            "@context": ["https://www.w3.org/ns/did/v1"],
            "id": self.did,
            "alsoKnownAs": [f"at://{self.aka_handle or self.handle}"],
            "verificationMethod": [],
            "service": [
                {
                    "id": "#atproto_pds",
                    "type": "AtprotoPersonalDataServer",
                    "serviceEndpoint": self.pds_endpoint or self.url,
                }
            ],
        }


def _error(status: int, error: str, message: str = "", **headers: str) -> JSONResponse:
    return JSONResponse({"error": error, "message": message or error}, status, headers=headers)


def build_app(fake: FakeBluesky) -> Starlette:
    async def logged(request: Request) -> tuple[dict[str, str], Response | None]:
        form = dict(await record(request, fake.log))
        return form, await fault_response(fake.faults, request.url.path)

    async def resolve_handle(request: Request) -> Response:
        _, faulted = await logged(request)
        if faulted is not None:
            return faulted
        if request.query_params.get("handle", "").lower() != fake.handle:
            return _error(400, "InvalidRequest", "Unable to resolve handle")
        return JSONResponse({"did": fake.did})

    async def plc(request: Request) -> Response:
        _, faulted = await logged(request)
        if faulted is not None:
            return faulted
        if fake.did_web or request.path_params["did"] != DID:
            return JSONResponse({"message": "DID not registered"}, 404)
        return JSONResponse(fake.document())

    async def did_web(request: Request) -> Response:
        _, faulted = await logged(request)
        if faulted is not None:
            return faulted
        if not fake.did_web:
            return Response(status_code=404)
        return JSONResponse(fake.document())

    def session_body(access: str, session: Session) -> dict[str, Any]:
        return {
            "did": session.did,
            "handle": fake.handle,
            "accessJwt": access,
            "refreshJwt": session.refresh,
            "active": True,
        }

    async def create_session(request: Request) -> Response:
        form, faulted = await logged(request)
        if faulted is not None:
            return faulted
        if form.get("identifier") not in (fake.did, fake.handle) or not secrets.compare_digest(
            form.get("password", ""), fake.password
        ):
            return _error(401, "AuthenticationRequired", "Invalid identifier or password")
        access, _ = fake.log_in()
        return JSONResponse(session_body(access, fake.sessions[access]))

    def bearer(request: Request) -> str:
        auth = request.headers.get("authorization", "")
        return auth[7:] if auth.lower().startswith("bearer ") else ""

    async def refresh_session(request: Request) -> Response:
        _, faulted = await logged(request)
        if faulted is not None:
            return faulted
        token = bearer(request)
        if token not in fake.refresh_tokens:
            return _error(400, "ExpiredToken", "Token has expired")
        fake.refresh_tokens.discard(token)  # rotation: the old refresh token is spent
        access, _ = fake.log_in()
        return JSONResponse(session_body(access, fake.sessions[access]))

    async def delete_session(request: Request) -> Response:
        _, faulted = await logged(request)
        if faulted is not None:
            return faulted
        token = bearer(request)
        if token not in fake.refresh_tokens:
            return _error(400, "ExpiredToken", "Token has expired")
        fake.refresh_tokens.discard(token)
        for access, session in list(fake.sessions.items()):
            if session.refresh == token:
                del fake.sessions[access]
        return Response(status_code=200)

    async def guarded(request: Request) -> Response | None:
        _, faulted = await logged(request)
        if faulted is not None:
            return faulted
        if not fake.spend():
            return _error(429, "RateLimitExceeded", **fake.rate_headers())
        if request.headers.get("authorization", "").startswith("DPoP "):
            grant = check_resource_request(fake.auth, request)
            return grant if isinstance(grant, Response) else None
        session = fake.sessions.get(bearer(request))
        if session is None:
            return _error(401, "AuthenticationRequired", "Authentication Required")
        if session.expired:
            return _error(400, "ExpiredToken", "Token has expired")
        return None

    async def get_profile(request: Request) -> Response:
        if (refused := await guarded(request)) is not None:
            return refused
        if request.query_params.get("actor") not in (fake.did, fake.handle):
            return _error(400, "InvalidRequest", "Profile not found")
        return JSONResponse(
            {
                "did": fake.did,
                "handle": fake.handle,
                "followersCount": fake.followers,
                "followsCount": 3,
                "postsCount": len(fake.posts),
            },
            headers=fake.rate_headers(),
        )

    async def author_feed(request: Request) -> Response:
        if (refused := await guarded(request)) is not None:
            return refused
        q = request.query_params
        if q.get("actor") != fake.did:
            return _error(400, "InvalidRequest", "Profile not found")
        limit = max(1, min(int(q.get("limit", "50")), 100))
        page = _page(fake, q.get("cursor"), limit)
        fake.pages_served += 1
        for hook in list(fake.on_feed_page):
            hook(fake.pages_served)
        body: dict[str, Any] = {"feed": [p.as_item() for p in page]}
        if len(page) == limit:
            body["cursor"] = _z(page[-1].shown_at)
        return JSONResponse(body, headers=fake.rate_headers())

    async def resource_metadata(request: Request) -> Response:
        _, faulted = await logged(request)
        return faulted or protected_resource(fake.auth)

    return Starlette(
        routes=[
            Route("/xrpc/com.atproto.identity.resolveHandle", resolve_handle),
            Route("/xrpc/com.atproto.server.createSession", create_session, methods=["POST"]),
            Route("/xrpc/com.atproto.server.refreshSession", refresh_session, methods=["POST"]),
            Route("/xrpc/com.atproto.server.deleteSession", delete_session, methods=["POST"]),
            Route("/xrpc/app.bsky.actor.getProfile", get_profile),
            Route("/xrpc/app.bsky.feed.getAuthorFeed", author_feed),
            Route("/.well-known/did.json", did_web),
            Route("/.well-known/oauth-protected-resource", resource_metadata),
            Route("/{did:str}", plc),
        ]
    )


def _page(fake: FakeBluesky, cursor: str | None, limit: int) -> list[Post]:
    """Newest first by the time each item appeared (a repost by its repost time); the pinned
    post first on the first page only; the cursor is the last item's time, as the AppView's."""
    items = sorted((p for p in fake.posts if not p.pinned), key=lambda p: p.shown_at, reverse=True)
    if cursor:
        items = [p for p in items if _z(p.shown_at) < cursor]
    pinned = [p for p in fake.posts if p.pinned] if not cursor else []
    return (pinned + items)[:limit]


@contextmanager
def running_bluesky(**kwargs: Any) -> Iterator[FakeBluesky]:
    """Serve a fresh fake on a free loopback port for the duration of the block."""
    fake = FakeBluesky(**kwargs)
    with LiveServer(build_app(fake)) as server, LiveServer(build_entryway(fake.auth)) as entry:
        fake.url = server.base_url
        fake.auth.url, fake.auth.pds_url, fake.auth.did = entry.base_url, fake.url, fake.did
        yield fake


__all__ = ["DID", "HANDLE", "PASSWORD", "FakeBluesky", "Post", "build_app", "running_bluesky"]
