"""The `mastodon` connector: the member's own statuses and follower count, via OAuth 2.

Statuses are read with `min_id` paging, oldest new status first, following the `Link`
header's `prev` relation (Mastodon API "Paginating"): walking up from the cursor never leaves
the gap that `since_id` leaves when more than a page arrived between two syncs (SY-07), and each
committed page moves the cursor forward, so a crash loses nothing.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar
from urllib.parse import urlencode

import httpx

from coop.connectors import spec
from coop.connectors.builtin import is_loopback_host, plain_text, rest

log = logging.getLogger("coop.connectors.mastodon")

SCOPES = "read:accounts read:statuses"


def instance_url(raw: str, *, allow_loopback_http: bool = False) -> str:
    """The canonical base URL of a Mastodon instance the member typed ("example.social",
    "https://example.social/"), or InvalidSourceError. https only; plain http is accepted for
    loopback hosts when the operator allowed them (tests, local development)."""
    text = raw.strip()
    if not text or len(text) > 255 or any(c.isspace() for c in text):
        raise spec.InvalidSourceError("Enter your Mastodon server, like example.social.")
    if "://" not in text:
        text = "https://" + text
    try:
        url = httpx.URL(text)
    except (httpx.InvalidURL, ValueError):
        raise spec.InvalidSourceError("That is not a valid server address.") from None
    if url.userinfo or url.query or url.fragment or url.path not in ("", "/") or not url.host:
        raise spec.InvalidSourceError("Enter only the server's address, like example.social.")
    host = url.host.lower().rstrip(".")
    if url.scheme == "http":
        if not (allow_loopback_http and is_loopback_host(host)):
            raise spec.InvalidSourceError("The server must use https.")
    elif url.scheme != "https":
        raise spec.InvalidSourceError("The server must use https.")
    netloc = f"[{host}]" if ":" in host else host
    default = 443 if url.scheme == "https" else 80
    if url.port not in (None, default):
        netloc += f":{url.port}"
    return f"{url.scheme}://{netloc}"


def _status_id(value: Any) -> int:
    if not isinstance(value, str) or not value.isdigit():
        raise spec.PermanentUpstreamError("the instance sent a status without a valid id")
    return int(value)


class MastodonConnector:
    api_version: ClassVar[int] = spec.API_VERSION
    name: ClassVar[str] = "mastodon"
    title: ClassVar[str] = "Mastodon"
    description: ClassVar[str] = (
        "Your own posts on your Mastodon server, with how many favourites, boosts and replies "
        "each received, and how many followers you have."
    )
    reads: ClassVar[tuple[str, ...]] = (spec.POST, spec.AUDIENCE)
    never_reads: ClassVar[tuple[str, ...]] = (
        "who follows you or whom you follow (only the number of followers)",
        "who favourited, boosted or replied to your posts (only the counts)",
        "your direct messages",
        "posts by other people, including the ones you boosted",
        "your bookmarks, notifications and lists",
    )
    auth: ClassVar[spec.AuthMethod] = "oauth2"
    scopes: ClassVar[str] = SCOPES

    def __init__(self, *, page_size: int = 40) -> None:
        self.page_size = max(1, min(page_size, 40))

    async def sync(
        self, ctx: spec.SyncContext, cursor: str | None
    ) -> AsyncIterator[spec.SyncBatch]:
        api = _Api(ctx)
        account = rest.json_body(
            await api.get(f"{api.base}/api/v1/accounts/verify_credentials"), dict
        )
        account_id = account.get("id")
        if not isinstance(account_id, str) or not account_id.isdigit():
            raise spec.PermanentUpstreamError("the instance sent an account without an id")
        yield spec.SyncBatch([self._audience(ctx, account_id, account)], cursor)

        newest = cursor if cursor and cursor.isdigit() else "0"
        query = {"limit": str(self.page_size), "exclude_reblogs": "true", "min_id": newest}
        url: str | None = f"{api.base}/api/v1/accounts/{account_id}/statuses?{urlencode(query)}"
        while url is not None:
            response = await api.get(url)
            page = rest.json_body(response, list)
            if not page:
                return
            records = [r for r in (self._post(s) for s in page) if r is not None]
            newest = str(
                max(_status_id(s.get("id") if isinstance(s, dict) else None) for s in page)
            )
            yield spec.SyncBatch(records, newest)
            url = rest.next_link(response, "prev", api.base)

    def _audience(
        self, ctx: spec.SyncContext, account_id: str, account: Mapping[str, Any]
    ) -> spec.Record:
        day = ctx.now.date().isoformat()
        return spec.Record(
            kind=spec.AUDIENCE,
            external_id=f"followers:{account_id}:{day}",
            occurred_at=ctx.now,
            counts={"followers": rest.count(account.get("followers_count"))},
        )

    def _post(self, status: Any) -> spec.Record | None:
        if not isinstance(status, dict):
            raise spec.PermanentUpstreamError("the instance sent a malformed status")
        _status_id(status.get("id"))
        # Direct messages are conversations with other people; boosts are their posts.
        if status.get("visibility") == "direct" or status.get("reblog"):
            return None
        content = status.get("content")
        url = status.get("url")
        return spec.Record(
            kind=spec.POST,
            external_id=str(status["id"]),
            occurred_at=rest.parse_time(status.get("created_at")),
            counts={
                "favourites": rest.count(status.get("favourites_count")),
                "reblogs": rest.count(status.get("reblogs_count")),
                "replies": rest.count(status.get("replies_count")),
            },
            text=plain_text(content) if isinstance(content, str) else None,
            url=url if isinstance(url, str) and url.startswith("https://") else None,
        )

    async def revoke(self, ctx: spec.SyncContext) -> None:
        """`POST /oauth/revoke` (RFC 7009). Logged by code on failure, never raised."""
        creds = ctx.credentials
        try:
            base = instance_url(ctx.config.get("instance", ""), allow_loopback_http=True)
            response = await rest.send(
                ctx.http,
                "POST",
                f"{base}/oauth/revoke",
                data={
                    "client_id": creds.get("client_id", ""),
                    "client_secret": creds.get("client_secret", ""),
                    "token": creds.get("access_token", ""),
                },
            )
            rest.raise_for_status(response)
        except spec.ConnectorError as exc:
            log.warning("mastodon revoke failed", extra={"code": type(exc).__name__})


class _Api:
    """Authenticated GETs against one instance, with rate-limit bookkeeping."""

    def __init__(self, ctx: spec.SyncContext) -> None:
        self.http = ctx.http
        # The instance was validated at connect time; loopback http only passes the SSRF guard
        # when the operator allow-listed it.
        self.base = instance_url(ctx.config.get("instance", ""), allow_loopback_http=True)
        token = ctx.credentials.get("access_token")
        if not token:
            raise spec.NeedsReauthorization("no access token stored")
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self.gate = rest.RateGate()

    async def get(self, url: str) -> httpx.Response:
        self.gate.before_request()
        response = await rest.send(self.http, "GET", url, headers=self.headers)
        rest.raise_for_status(response)
        self.gate.observe(response)
        return response


__all__ = ["SCOPES", "MastodonConnector", "instance_url"]
