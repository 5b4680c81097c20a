"""AT Protocol identity and XRPC plumbing for the Bluesky connector.

A handle resolves to a DID (`com.atproto.identity.resolveHandle`), the DID to its document
(did:plc from the PLC directory, did:web from `/.well-known/did.json`), and the document names
the account's PDS (the `#atproto_pds` service) and, in `alsoKnownAs`, the handle it claims: the
handle counts only when both directions agree (atproto.com/specs/handle, "Handle Resolution").
Every request goes through the engine's guarded client, so the SSRF guard judges the resolver,
the directory, a did:web host and the PDS alike.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import httpx

from coop.connectors import spec
from coop.connectors.builtin import is_loopback_host, rest

# atproto.com/specs/handle: ASCII labels, at least two, the last not starting with a digit.
HANDLE_RE = re.compile(r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
PLC_RE = re.compile(r"^did:plc:[a-z2-7]{24}$")
WEB_RE = re.compile(r"^did:web:[a-zA-Z0-9.\-]+(%3[aA][0-9]{1,5})?$")
MAX_HANDLE = 253


@dataclass(frozen=True)
class Identity:
    did: str
    handle: str
    pds: str


def _not_found(message: str = "coop could not find that Bluesky account.") -> Exception:
    return spec.InvalidSourceError(message, code="handle_not_resolved")


def normalize_handle(raw: str) -> str:
    """`@Alice.bsky.social ` -> `alice.bsky.social`, or InvalidSourceError(invalid_handle)."""
    handle = raw.strip().removeprefix("@").lower()
    if len(handle) > MAX_HANDLE or not HANDLE_RE.match(handle):
        raise spec.InvalidSourceError(
            "Enter your Bluesky handle, like alice.bsky.social.", code="invalid_handle"
        )
    return handle


def origin(raw: Any) -> str:
    """A service endpoint as a bare https origin (plain http only for loopback, which the
    guard refuses anyway unless the operator allow-listed it)."""
    try:
        url = httpx.URL(raw) if isinstance(raw, str) and len(raw) < 512 else None
    except (httpx.InvalidURL, ValueError):
        url = None
    if url is None or not url.host or url.userinfo or url.query or url.fragment:
        raise _not_found("The account's server address is not usable.")
    if url.path not in ("", "/"):
        raise _not_found("The account's server address is not usable.")
    host = url.host.lower()
    if url.scheme != "https" and not (url.scheme == "http" and is_loopback_host(host)):
        raise _not_found("The account's server does not use https.")
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{'[' + host + ']' if ':' in host else host}{port}"


async def xrpc_get(http: spec.HttpClient, base: str, method: str, **params: str) -> Any:
    response = await rest.send(http, "GET", f"{base}/xrpc/{method}", params=params)
    rest.raise_for_status(response)
    return rest.json_body(response, dict)


async def resolve_handle(http: spec.HttpClient, resolver: str, handle: str) -> str:
    response = await rest.send(
        http,
        "GET",
        f"{resolver}/xrpc/com.atproto.identity.resolveHandle",
        params={"handle": handle},
    )
    if response.status_code in (400, 404):
        raise _not_found()
    rest.raise_for_status(response)
    did = rest.json_body(response, dict).get("did")
    if not isinstance(did, str) or not (PLC_RE.match(did) or WEB_RE.match(did)):
        raise _not_found()
    return did


def did_document_url(did: str, plc: str) -> str:
    if PLC_RE.match(did):
        return f"{plc}/{did}"
    if WEB_RE.match(did):
        host = unquote(did.removeprefix("did:web:"))
        scheme = "http" if is_loopback_host(host.rsplit(":", 1)[0]) else "https"
        return f"{scheme}://{host}/.well-known/did.json"
    raise _not_found()


async def did_document(http: spec.HttpClient, did: str, plc: str) -> Mapping[str, Any]:
    response = await rest.send(http, "GET", did_document_url(did, plc), max_bytes=256 * 1024)
    if response.status_code in (404, 410):
        raise _not_found()
    rest.raise_for_status(response)
    document = rest.json_body(response, dict)
    if document.get("id") != did:
        raise _not_found()
    return document  # type: ignore[no-any-return]


def pds_of(document: Mapping[str, Any]) -> str:
    services = document.get("service")
    for service in services if isinstance(services, list) else []:
        if not isinstance(service, dict):
            continue
        if str(service.get("id", "")).endswith("#atproto_pds") and (
            service.get("type") == "AtprotoPersonalDataServer"
        ):
            return origin(service.get("serviceEndpoint"))
    raise _not_found("That Bluesky account names no server.")


def claims_handle(document: Mapping[str, Any], handle: str) -> bool:
    aka = document.get("alsoKnownAs")
    return isinstance(aka, list) and f"at://{handle}" in [str(a).lower() for a in aka]


async def resolve(http: spec.HttpClient, *, resolver: str, plc: str, handle: str) -> Identity:
    """The account behind `handle`, verified both ways (handle -> DID -> handle)."""
    did = await resolve_handle(http, resolver, handle)
    document = await did_document(http, did, plc)
    if not claims_handle(document, handle):
        raise _not_found("That handle and its account do not name each other.")
    return Identity(did=did, handle=handle, pds=pds_of(document))


def xrpc_error(response: httpx.Response) -> str:
    """The XRPC error name of a failed answer (`{"error": "ExpiredToken", ...}`), or ""."""
    try:
        body = response.json()
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, str) else ""


__all__ = [
    "Identity",
    "did_document_url",
    "normalize_handle",
    "origin",
    "resolve",
    "xrpc_error",
    "xrpc_get",
]
