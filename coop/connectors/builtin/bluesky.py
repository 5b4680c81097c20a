"""The `bluesky` connector: the member's own posts (with like, repost, reply and quote counts)
and follower count, from their PDS over XRPC, connected with "Sign in with Bluesky" (atproto
OAuth, where the member's server offers it) or a handle and an app password.

- OAuth (coop/connectors/bluesky_oauth.py runs the authorization): the session is a DPoP-bound
  access and refresh token pair plus the session's own DPoP key, all sealed as credentials.
  Resource requests carry DPoP proofs; an expired access token is refreshed at the
  authorization server's token endpoint (rotating the refresh token); disconnecting revokes
  the refresh token there (RFC 7009).
- App password (`login`): the handle is resolved to a DID and its PDS (atproto.py), then
  `com.atproto.server.createSession` trades the app password for an access and a refresh
  token. Only the tokens are kept, sealed under the member's key; the password is not stored.
- Sync: `app.bsky.actor.getProfile` (follower count) and `app.bsky.feed.getAuthorFeed`, newest
  first, following its `cursor`. Reposts of other people's posts are skipped, and nothing about
  another account (the parents of replies, who liked or reposted) is kept.
- An expired access token (`ExpiredToken`) is renewed once per run with
  `com.atproto.server.refreshSession`, and the new pair is committed before it is used.
- Disconnect: `com.atproto.server.deleteSession` ends the session upstream.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from coop.connectors import spec
from coop.connectors.builtin import atproto, atproto_oauth, rest
from coop.vault.jose import EcKey

log = logging.getLogger("coop.connectors.bluesky")

DEFAULT_RESOLVER = "https://public.api.bsky.app"
DEFAULT_PLC = "https://plc.directory"
PAGE_SIZE = 100  # getAuthorFeed's maximum
# Counts keep moving after a post is published: each sync re-reads this much before the
# newest post it already has, so recent posts' likes and reposts stay current.
RECOUNT = timedelta(days=30)
SESSION_GONE = frozenset({"ExpiredToken", "InvalidToken"})
REPOST = "app.bsky.feed.defs#reasonRepost"
PIN = "app.bsky.feed.defs#reasonPin"
MAX_TEXT = 3000


@dataclass(frozen=True)
class Position:
    """The sync cursor: `watermark` is the newest post time of the last complete pass; while a
    pass is under way, `page` is the upstream cursor to continue from and `newest` what the
    pass has seen so far (so a crash resumes mid-pass instead of starting over)."""

    watermark: str = ""
    page: str = ""
    newest: str = ""

    @classmethod
    def parse(cls, raw: str | None) -> Position:
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        return cls(*(str(data.get(k) or "") for k in ("watermark", "page", "newest")))

    def dump(self) -> str:
        return json.dumps({k: v for k, v in vars(self).items() if v}, sort_keys=True)


class BlueskyConnector:
    api_version: ClassVar[int] = spec.API_VERSION
    name: ClassVar[str] = "bluesky"
    title: ClassVar[str] = "Bluesky"
    description: ClassVar[str] = (
        "Your own Bluesky posts and replies, with how many likes, reposts, replies and quotes "
        "each received, and how many followers you have. You sign in with Bluesky where your "
        "server offers it, or connect with your handle and an app password (Settings → Privacy "
        "and security → App passwords), never your password."
    )
    reads: ClassVar[tuple[str, ...]] = (spec.POST, spec.AUDIENCE)
    never_reads: ClassVar[tuple[str, ...]] = (
        "who follows you or whom you follow (only the number of followers)",
        "who liked, reposted, quoted or replied to your posts (only the counts)",
        "your direct messages (coop never asks for chat access, with either way of connecting)",
        "posts by other people, including the ones you reposted or replied to",
        "your likes, lists, feeds, blocks and mutes",
    )
    auth: ClassVar[spec.AuthMethod] = "app_password"

    def __init__(self) -> None:
        self.resolver = DEFAULT_RESOLVER
        self.plc = DEFAULT_PLC
        # coop's atproto OAuth client identity, set by the server at start-up (jobs.sync.setup):
        # sessions signed in with OAuth need it to refresh and revoke their tokens.
        self.oauth_client: atproto_oauth.Client | None = None

    def configure(self, env: Mapping[str, str]) -> None:
        self.resolver = (env.get("COOP_BLUESKY_RESOLVER_URL") or DEFAULT_RESOLVER).rstrip("/")
        self.plc = (env.get("COOP_BLUESKY_PLC_URL") or DEFAULT_PLC).rstrip("/")

    async def login(self, http: spec.HttpClient, account: str, password: str) -> spec.Login:
        handle = atproto.normalize_handle(account)
        if not password.strip() or len(password) > 256:
            raise spec.NeedsReauthorization("no app password")
        who = await atproto.resolve(http, resolver=self.resolver, plc=self.plc, handle=handle)
        response = await rest.send(
            http,
            "POST",
            f"{who.pds}/xrpc/com.atproto.server.createSession",
            json={"identifier": who.did, "password": password.strip()},
        )
        if response.status_code in (400, 401):
            raise spec.NeedsReauthorization("the PDS refused the app password")
        rest.raise_for_status(response)
        body = rest.json_body(response, dict)
        if body.get("did") != who.did:
            raise spec.PermanentUpstreamError("the PDS answered for another account")
        return spec.Login(
            config={"handle": who.handle, "did": who.did, "pds": who.pds},
            credentials=_tokens(body),
        )

    async def sync(
        self, ctx: spec.SyncContext, cursor: str | None
    ) -> AsyncIterator[spec.SyncBatch]:
        session = _Session(ctx, self.oauth_client)
        profile = await session.get("app.bsky.actor.getProfile", actor=session.did)
        yield spec.SyncBatch([_audience(ctx, session.did, profile)], cursor)
        at = Position.parse(cursor)
        floor = _moment(at.watermark)
        newest = at.newest
        page = at.page
        while True:
            params = {"actor": session.did, "limit": str(PAGE_SIZE)}
            if page:
                params["cursor"] = page
            body = await session.get("app.bsky.feed.getAuthorFeed", **params)
            feed = body.get("feed")
            if not isinstance(feed, list):
                raise spec.PermanentUpstreamError("the PDS sent a feed without items")
            records = [r for r in (_post(item, session.did) for item in feed) if r is not None]
            newest = max([newest, *(_stamp(r) for r in records)])
            following = body.get("cursor")
            page = following if isinstance(following, str) else ""
            done = not feed or not page or _reached(feed, floor)
            if done:
                yield spec.SyncBatch(records, Position(watermark=newest or at.watermark).dump())
                return
            yield spec.SyncBatch(records, Position(at.watermark, page, newest).dump())

    async def revoke(self, ctx: spec.SyncContext) -> None:
        """`com.atproto.server.deleteSession` with the refresh token. A session the PDS no
        longer knows is already gone; any other failure raises, so the engine retries."""
        if _is_oauth(ctx.credentials):
            await self._revoke_oauth(ctx)
            return
        pds = atproto.origin(ctx.config.get("pds"))
        response = await rest.send(
            ctx.http,
            "POST",
            f"{pds}/xrpc/com.atproto.server.deleteSession",
            headers=_bearer(ctx.credentials.get("refresh_jwt")),
        )
        if response.status_code in (400, 401) and atproto.xrpc_error(response) in SESSION_GONE:
            return
        rest.raise_for_status(response)

    async def _revoke_oauth(self, ctx: spec.SyncContext) -> None:
        session = _OAuth(ctx.credentials, self.oauth_client)
        await atproto_oauth.revoke(
            ctx.http, session.server, session.client, session.dpop, session.refresh_token
        )


def _is_oauth(credentials: Mapping[str, str]) -> bool:
    return bool(credentials.get("dpop_jwk"))


def oauth_credentials(
    tokens: atproto_oauth.Tokens,
    server: atproto_oauth.AuthServer,
    client: atproto_oauth.Client,
    dpop: atproto_oauth.DPoP,
) -> dict[str, str]:
    """What an OAuth session keeps (sealed as the connection's credentials)."""
    return {
        **server.as_dict(),
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "client_id": client.client_id,
        "dpop_jwk": dpop.key.private_jwk(),
    }


class _OAuth:
    """An OAuth session read back from its credentials."""

    def __init__(self, credentials: Mapping[str, str], client: atproto_oauth.Client | None) -> None:
        if client is None or credentials.get("client_id") != client.client_id:
            # coop's client id follows COOP_ISSUER: tokens issued to another id are useless.
            raise spec.NeedsReauthorization("the session belongs to another client id")
        try:
            key = EcKey.from_private_jwk(credentials.get("dpop_jwk", ""))
        except ValueError:
            raise spec.NeedsReauthorization("the session's DPoP key is unreadable") from None
        self.client = client
        self.server = atproto_oauth.AuthServer.from_dict(credentials)
        self.dpop = atproto_oauth.DPoP(key)
        self.access_token = credentials.get("access_token", "")
        self.refresh_token = credentials.get("refresh_token", "")
        if not (self.access_token and self.refresh_token and self.server.token_endpoint):
            raise spec.NeedsReauthorization("no session stored")


def _bearer(token: str | None) -> dict[str, str]:
    if not token:
        raise spec.NeedsReauthorization("no session stored")
    return {"Authorization": f"Bearer {token}", "Accept": "application/json"}


def _tokens(body: Mapping[str, Any]) -> dict[str, str]:
    access, refresh = body.get("accessJwt"), body.get("refreshJwt")
    if not isinstance(access, str) or not isinstance(refresh, str) or not access or not refresh:
        raise spec.PermanentUpstreamError("the PDS sent a session without tokens")
    return {"access_jwt": access, "refresh_jwt": refresh}


class _Session:
    """Authenticated XRPC GETs on the member's PDS: rate-limit bookkeeping and one token
    refresh per run."""

    def __init__(self, ctx: spec.SyncContext, client: atproto_oauth.Client | None) -> None:
        self.ctx = ctx
        self.pds = atproto.origin(ctx.config.get("pds"))
        self.did = ctx.config.get("did", "")
        self.credentials = dict(ctx.credentials)
        self.oauth = _OAuth(self.credentials, client) if _is_oauth(self.credentials) else None
        if self.oauth is None:
            _bearer(self.credentials.get("access_jwt"))
        self.gate = rest.RateGate()
        self.refreshed = False

    async def get(self, method: str, **params: str) -> dict[str, Any]:
        response = await self._send(method, params)
        if self._expired(response) and not self.refreshed:
            await self._refresh()
            response = await self._send(method, params)
        if self._expired(response):
            raise spec.NeedsReauthorization("the PDS refused the session")
        rest.raise_for_status(response)
        self.gate.observe(response)
        body: dict[str, Any] = rest.json_body(response, dict)
        return body

    async def _send(self, method: str, params: Mapping[str, str]) -> httpx.Response:
        self.gate.before_request()
        if self.oauth is not None:
            return await self.oauth.dpop.send(
                self.ctx.http,
                "GET",
                f"{self.pds}/xrpc/{method}",
                token=self.oauth.access_token,
                params=dict(params),
                headers={"Accept": "application/json"},
            )
        return await rest.send(
            self.ctx.http,
            "GET",
            f"{self.pds}/xrpc/{method}",
            params=dict(params),
            headers=_bearer(self.credentials.get("access_jwt")),
        )

    @staticmethod
    def _expired(response: httpx.Response) -> bool:
        if response.status_code == 401:
            return True
        return response.status_code == 400 and atproto.xrpc_error(response) in SESSION_GONE

    async def _refresh(self) -> None:
        self.refreshed = True
        if self.oauth is not None:
            await self._refresh_oauth(self.oauth)
            return
        response = await rest.send(
            self.ctx.http,
            "POST",
            f"{self.pds}/xrpc/com.atproto.server.refreshSession",
            headers=_bearer(self.credentials.get("refresh_jwt")),
        )
        if response.status_code in (400, 401):
            raise spec.NeedsReauthorization("the PDS refused to renew the session")
        rest.raise_for_status(response)
        body = rest.json_body(response, dict)
        if body.get("did") not in (None, self.did):
            raise spec.PermanentUpstreamError("the PDS renewed a session for another account")
        self.credentials = _tokens(body)
        await self.ctx.save_credentials(self.credentials)  # the old refresh token is now spent

    async def _refresh_oauth(self, oauth: _OAuth) -> None:
        """A refresh-token grant with DPoP (the refresh token rotates): the new pair must
        still be the member's account, and is committed before it is used."""
        tokens = await atproto_oauth.refresh(
            self.ctx.http, oauth.server, oauth.client, oauth.dpop, oauth.refresh_token
        )
        if tokens.sub != self.did:
            raise spec.PermanentUpstreamError("the server renewed a session for another account")
        self.credentials = oauth_credentials(tokens, oauth.server, oauth.client, oauth.dpop)
        oauth.access_token, oauth.refresh_token = tokens.access_token, tokens.refresh_token
        await self.ctx.save_credentials(self.credentials)


def _audience(ctx: spec.SyncContext, did: str, profile: Mapping[str, Any]) -> spec.Record:
    return spec.Record(
        kind=spec.AUDIENCE,
        external_id=f"bluesky:followers:{did}:{ctx.now.date().isoformat()}",
        occurred_at=ctx.now,
        counts={"followers": rest.count(profile.get("followersCount"))},
    )


def _moment(value: Any) -> datetime | None:
    try:
        return rest.parse_time(value)
    except spec.PermanentUpstreamError:
        return None


def _stamp(record: spec.Record) -> str:
    return record.occurred_at.isoformat()


def _reached(feed: list[Any], floor: datetime | None) -> bool:
    """True once the page goes back past the last pass's newest post minus RECOUNT."""
    if floor is None:
        return False
    for item in feed:
        if not isinstance(item, dict) or _reason(item) == PIN:
            continue  # a pinned post sits on top whatever its age
        when = _moment(_item_time(item))
        if when is not None and when < floor - RECOUNT:
            return True
    return False


def _reason(item: Mapping[str, Any]) -> str:
    reason = item.get("reason")
    return str(reason.get("$type", "")) if isinstance(reason, dict) else ""


def _item_time(item: Mapping[str, Any]) -> Any:
    reason, post = item.get("reason"), item.get("post")
    if isinstance(reason, dict) and reason.get("indexedAt"):
        return reason["indexedAt"]
    return post.get("indexedAt") if isinstance(post, dict) else None


def _post(item: Any, did: str) -> spec.Record | None:
    """The member's own post in a feed item, or None (a repost, another author's post)."""
    if not isinstance(item, dict) or not isinstance(item.get("post"), dict):
        raise spec.PermanentUpstreamError("the PDS sent a malformed feed item")
    post = item["post"]
    author = post.get("author")
    if _reason(item) == REPOST or not isinstance(author, dict) or author.get("did") != did:
        return None
    uri, record = post.get("uri"), post.get("record")
    prefix = f"at://{did}/app.bsky.feed.post/"
    if not isinstance(uri, str) or not uri.startswith(prefix) or not isinstance(record, dict):
        return None
    when = _moment(record.get("createdAt")) or _moment(post.get("indexedAt"))
    if when is None:
        return None
    text = record.get("text")
    return spec.Record(
        kind=spec.POST,
        external_id=f"bluesky:{uri}",
        occurred_at=when,
        counts={
            "favourites": rest.count(post.get("likeCount")),
            "reblogs": rest.count(post.get("repostCount")),
            "replies": rest.count(post.get("replyCount")),
            "quotes": rest.count(post.get("quoteCount")),
        },
        text=text[:MAX_TEXT] if isinstance(text, str) and text else None,
        url=f"https://bsky.app/profile/{did}/post/{quote(uri.removeprefix(prefix), safe='')}",
    )


__all__ = ["BlueskyConnector", "Position", "oauth_credentials"]
