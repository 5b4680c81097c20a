"""Shared by the REST connectors (mastodon, github, bluesky): upstream errors, rate limits, Link
paging.

Extends `coop.connectors.builtin.raise_for_status` with the rate-limit headers these APIs send
(`X-RateLimit-Remaining/Reset`, or `RateLimit-Remaining/Reset` without the `X-` as Bluesky's
PDS sends them; GitHub's 403 for an exhausted limit). Maps what an upstream
answers onto the contract's errors: 401 -> NeedsReauthorization, 429 and
exhausted rate limits -> Throttled (with the wait the upstream asked for), 5xx and network
failures -> TransientUpstreamError, a body that is not the JSON we expect ->
PermanentUpstreamError.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from coop.connectors import spec
from coop.connectors.builtin import DEFAULT_RETRY_AFTER, MAX_RETRY_AFTER, parse_retry_after
from coop.errors import UrlNotAllowedError
from coop.types import utcnow


def parse_time(value: Any) -> datetime:
    """An ISO 8601 timestamp (with `Z` or an offset) as an aware UTC datetime."""
    if not isinstance(value, str):
        raise spec.PermanentUpstreamError("the upstream sent a record without a valid date")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise spec.PermanentUpstreamError("the upstream sent a malformed date") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# Below this a numeric reset is a number of seconds from now (the IETF RateLimit draft), not
# an epoch time (GitHub, Bluesky): 10^9 seconds after the epoch is September 2001.
_EPOCH_FLOOR = 10**9


def _rate_header(headers: Mapping[str, str], name: str) -> str:
    """`X-RateLimit-<name>`, else `RateLimit-<name>` (Bluesky's PDS drops the `X-`)."""
    return (headers.get(f"x-ratelimit-{name}") or headers.get(f"ratelimit-{name}") or "").strip()


def _reset_moment(raw: str, now: datetime) -> datetime | None:
    """The rate-limit reset: epoch seconds (GitHub, Bluesky), seconds from now (small numbers),
    or an ISO 8601 time (Mastodon)."""
    raw = raw.strip()
    if not raw:
        return None
    if raw.isdigit():
        seconds = int(raw)
        if seconds < _EPOCH_FLOOR:
            return now + timedelta(seconds=seconds)
        return datetime.fromtimestamp(seconds, UTC)
    try:
        return parse_time(raw)
    except spec.PermanentUpstreamError:
        return None


def wait_seconds(headers: Mapping[str, str], now: datetime | None = None) -> float:
    """How long the upstream asked us to wait: Retry-After (seconds or an HTTP date), else the
    rate-limit reset time, else one minute. Never less than one second."""
    now = now or utcnow()
    if headers.get("retry-after"):
        return float(math.ceil(parse_retry_after(headers["retry-after"], now)))
    moment = _reset_moment(_rate_header(headers, "reset"), now)
    wait = DEFAULT_RETRY_AFTER if moment is None else (moment - now).total_seconds()
    return float(min(MAX_RETRY_AFTER, max(1.0, math.ceil(wait))))


def exhausted(headers: Mapping[str, str]) -> bool:
    return _rate_header(headers, "remaining") == "0"


class RateGate:
    """Remembers the last rate-limit headers so we stop *before* a request that would be
    refused, instead of spending it on a 429."""

    def __init__(self) -> None:
        self._blocked: Mapping[str, str] | None = None

    def observe(self, response: httpx.Response) -> None:
        self._blocked = dict(response.headers) if exhausted(response.headers) else None

    def before_request(self) -> None:
        if self._blocked is not None:
            wait = wait_seconds(self._blocked)
            if wait > 1.0 or not _rate_header(self._blocked, "reset"):
                raise spec.Throttled(wait, "rate limit exhausted")
            self._blocked = None


def _is_rate_limited(response: httpx.Response) -> bool:
    if response.status_code == 429:
        return True
    if response.status_code == 503 and "retry-after" in response.headers:
        return True  # "come back later", with the time to wait
    if response.status_code != 403:
        return False
    if exhausted(response.headers) or "retry-after" in response.headers:
        return True
    return "rate limit" in response.text.lower()


def raise_for_status(response: httpx.Response, now: datetime | None = None) -> None:
    """Raise the contract error an unsuccessful response means (nothing on 2xx): 401 needs
    reauthorization; 429, a 403 saying the rate limit is used up, or a 503 with Retry-After
    are throttling (wait as told); other 5xx, 408 and 425 are transient; anything else,
    unfollowed redirects included, is permanent."""
    status = response.status_code
    if 200 <= status < 300:
        return
    if status == 401:
        raise spec.NeedsReauthorization("the upstream refused the access token")
    if _is_rate_limited(response):
        raise spec.Throttled(wait_seconds(response.headers, now), f"upstream answered {status}")
    if status >= 500 or status in (408, 425):
        raise spec.TransientUpstreamError(f"upstream answered {status}")
    raise spec.PermanentUpstreamError(f"upstream answered {status}")


async def send(http: spec.HttpClient, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """One upstream call through the engine's guarded client, network failures mapped."""
    try:
        response: httpx.Response = await http.request(method, url, **kwargs)
    except httpx.TimeoutException:
        raise spec.TransientUpstreamError("the upstream did not answer in time") from None
    except httpx.TransportError:
        raise spec.TransientUpstreamError("the upstream could not be reached") from None
    except UrlNotAllowedError as exc:
        raise spec.InvalidSourceError(exc.message, code=exc.code) from None
    return response


def json_body(response: httpx.Response, expect: type) -> Any:
    try:
        data = response.json()
    except ValueError:
        raise spec.PermanentUpstreamError("the upstream sent a malformed body") from None
    if not isinstance(data, expect):
        raise spec.PermanentUpstreamError("the upstream sent an unexpected body")
    return data


def same_origin(url: str, base: str) -> bool:
    a, b = httpx.URL(url), httpx.URL(base)
    return (a.scheme, a.host, a.port) == (b.scheme, b.host, b.port)


def next_link(response: httpx.Response, rel: str, base: str) -> str | None:
    """The `Link` header's URL for `rel`, only if it stays on the upstream we were given."""
    link = response.links.get(rel, {}).get("url")
    if not link:
        return None
    if not same_origin(link, base):
        raise spec.PermanentUpstreamError("the upstream pointed pagination at another host")
    return str(link)


def count(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


__all__ = [
    "RateGate",
    "count",
    "json_body",
    "next_link",
    "parse_time",
    "raise_for_status",
    "same_origin",
    "send",
    "wait_seconds",
]
