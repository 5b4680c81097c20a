"""Outbound HTTP for connectors: an SSRF guard, pinned connections, time and size limits.

Every URL (and every redirect hop) is resolved, each resolved address is checked against the
blocked ranges, and the request is then sent to the checked address itself: the URL's host is
replaced by the IP, the `Host` header keeps the name, and for https the `sni_hostname`
extension makes TLS send and verify the original name. Resolving once and connecting to that
exact address closes the DNS-rebinding gap of "check the name, then let the client resolve it
again". Redirects are followed here (never by httpx) so each hop goes through the same check;
a hop to another scheme, host or port loses the `Authorization` and `Cookie` headers (and any
`auth`/`cookies` option) for the rest of the chain, so a bearer token never leaves its origin.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from coop.config import Settings
from coop.connectors.spec import InvalidSourceError
from coop.errors import UrlNotAllowedError

log = logging.getLogger("coop.connectors.outbound")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Dropped when a redirect leaves the origin (scheme, host, port) of the previous hop.
CREDENTIAL_HEADERS = ("authorization", "cookie")
# Ranges that are never "the public internet" beyond what ipaddress flags already cover.
EXTRA_BLOCKED: tuple[Network, ...] = (
    ipaddress.ip_network("100.64.0.0/10"),  # carrier-grade NAT
    ipaddress.ip_network("192.0.0.0/24"),  # IETF protocol assignments
    ipaddress.ip_network("198.18.0.0/15"),  # benchmarking
    ipaddress.ip_network("64:ff9b::/96"),  # NAT64 (can reach IPv4 internals)
    ipaddress.ip_network("2002::/16"),  # 6to4 (embeds an IPv4 address)
)


@dataclass(frozen=True)
class Limits:
    """Timeouts (seconds) and the largest response body read (bytes)."""

    connect: float = 5.0
    read: float = 10.0
    total: float = 30.0
    max_bytes: int = 5 * 1024 * 1024


async def system_resolver(host: str, port: int) -> Sequence[str]:
    """Every address the system resolver gives for `host` (A and AAAA)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise UrlNotAllowedError("That address does not resolve.") from None
    return [str(info[4][0]) for info in infos]


def is_public(address: IPAddress) -> bool:
    """False for loopback, private, link-local, multicast, reserved and unspecified ranges."""
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return is_public(mapped)
    if (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    ):
        return False
    return not any(address in net for net in EXTRA_BLOCKED if net.version == address.version)


class Guard:
    """Decides which URLs outbound requests may reach, and to which IP they connect."""

    def __init__(
        self,
        allow: Sequence[Network | str] = (),
        resolver: Resolver = system_resolver,
    ) -> None:
        self.allowed_networks = tuple(a for a in allow if not isinstance(a, str))
        self.allowed_hosts = frozenset(a.lower() for a in allow if isinstance(a, str))
        self.resolver = resolver

    @classmethod
    def from_settings(cls, settings: Settings, resolver: Resolver | None = None) -> Guard:
        return cls(settings.outbound_allow, resolver or system_resolver)

    def _allowed(self, address: IPAddress) -> bool:
        if any(address in net for net in self.allowed_networks if net.version == address.version):
            return True
        return is_public(address)

    async def check(self, url: str | httpx.URL) -> tuple[httpx.URL, str]:
        """Return the parsed URL and the IP to connect to, or raise UrlNotAllowedError."""
        try:
            parsed = httpx.URL(str(url))
        except (httpx.InvalidURL, TypeError, ValueError):
            raise UrlNotAllowedError("That is not a valid web address.") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise UrlNotAllowedError("Only http and https addresses can be fetched.")
        if parsed.userinfo:
            raise UrlNotAllowedError("Addresses with a user name or password are not accepted.")
        host = parsed.host.lower().rstrip(".")
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        candidates = [host] if literal else await self.resolver(host, port)
        if not candidates:
            raise UrlNotAllowedError("That address does not resolve.")
        addresses = [ipaddress.ip_address(c.split("%", 1)[0]) for c in candidates]
        # A host name on the operator allow-list may resolve anywhere (e.g. an intranet blog).
        if literal is None and host in self.allowed_hosts:
            return parsed, str(addresses[0])
        if not all(self._allowed(a) for a in addresses):
            log.info("outbound refused", extra={"code": "url_not_allowed"})
            raise UrlNotAllowedError()
        return parsed, str(addresses[0])


def _pinned(url: httpx.URL, ip: str) -> tuple[httpx.URL, dict[str, str], dict[str, Any]]:
    default_port = 443 if url.scheme == "https" else 80
    host_header = url.host if url.port in (None, default_port) else f"{url.host}:{url.port}"
    if ":" in url.host and not url.host.startswith("["):
        host_header = f"[{url.host}]" + ("" if url.port in (None, default_port) else f":{url.port}")
    extensions: dict[str, Any] = {}
    if url.scheme == "https":
        extensions["sni_hostname"] = url.host
    return url.copy_with(host=ip), {"Host": host_header}, extensions


class OutboundClient:
    """An httpx.AsyncClient wrapper implementing `spec.HttpClient`.

    Responses are returned fully read (at most `limits.max_bytes` decoded bytes, else
    `InvalidSourceError(code="source_too_large")`); the whole exchange, redirects included,
    must finish within `limits.total` seconds, else `httpx.TimeoutException`.
    """

    def __init__(self, guard: Guard, limits: Limits | None = None) -> None:
        self.guard = guard
        self.limits = limits or Limits()
        timeout = httpx.Timeout(
            connect=self.limits.connect,
            read=self.limits.read,
            write=self.limits.read,
            pool=self.limits.connect,
        )
        self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False)

    async def __aenter__(self) -> OutboundClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", url, **kwargs)

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        follow = kwargs.pop("follow_redirects", method.upper() in ("GET", "HEAD"))
        max_bytes = kwargs.pop("max_bytes", self.limits.max_bytes)
        try:
            async with asyncio.timeout(self.limits.total):
                return await self._exchange(method, url, follow, max_bytes, kwargs)
        except TimeoutError:
            raise httpx.TimeoutException("the upstream took too long") from None

    async def _exchange(
        self, method: str, url: str, follow: bool, max_bytes: int, kwargs: dict[str, Any]
    ) -> httpx.Response:
        current = httpx.URL(url)
        for _hop in range(MAX_REDIRECTS + 1):
            response = await self._send_once(method, current, max_bytes, kwargs)
            if not (follow and response.status_code in REDIRECT_STATUSES):
                return response
            location = response.headers.get("location")
            if not location:
                return response
            target = current.join(location)
            if _origin(target) != _origin(current):
                kwargs = _without_credentials(kwargs)  # for this hop and every later one
            current = target
            if response.status_code == 303:
                method = "GET"
            if method == "GET":
                kwargs = {k: v for k, v in kwargs.items() if k not in ("content", "data", "json")}
        raise InvalidSourceError("The address redirects too many times.", code="too_many_redirects")

    async def _send_once(
        self, method: str, url: httpx.URL, max_bytes: int, kwargs: dict[str, Any]
    ) -> httpx.Response:
        checked, ip = await self.guard.check(url)
        target, host_header, extensions = _pinned(checked, ip)
        headers = httpx.Headers(kwargs.get("headers"))
        headers.update(host_header)
        send_kwargs = {**kwargs, "headers": headers, "extensions": extensions}
        async with self._client.stream(method, target, **send_kwargs) as response:
            body = bytearray()
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise _too_large(max_bytes)
            async for chunk in response.aiter_bytes():
                body.extend(chunk)
                if len(body) > max_bytes:
                    raise _too_large(max_bytes)
        kept = [
            (k, v)
            for k, v in response.headers.multi_items()
            if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        ]
        request = httpx.Request(method, checked, headers=headers)
        return httpx.Response(
            response.status_code, headers=kept, content=bytes(body), request=request
        )


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default_port = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host.lower(), url.port or default_port


def _without_credentials(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The request options minus everything that authenticates to the original origin: a
    redirect to another scheme, host or port must not carry the member's bearer token."""
    kept = {k: v for k, v in kwargs.items() if k not in ("auth", "cookies")}
    if kwargs.get("headers") is not None:
        headers = httpx.Headers(kwargs["headers"])
        for name in CREDENTIAL_HEADERS:
            if name in headers:  # case-insensitive, every occurrence
                del headers[name]
        kept["headers"] = headers
    return kept


def _too_large(max_bytes: int) -> InvalidSourceError:
    return InvalidSourceError(
        f"The source is larger than {max_bytes // (1024 * 1024) or 1} MB.", code="source_too_large"
    )


__all__ = ["Guard", "Limits", "OutboundClient", "Resolver", "is_public", "system_resolver"]
