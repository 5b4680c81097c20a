"""coop as an OAuth 2 client of a member's upstream account (a Mastodon instance, GitHub).

Built from authlib's protocol primitives (authorization URI, PKCE S256, token request body)
rather than its httpx client, because every upstream request must go through the SSRF-guarded
`OutboundClient` (and authlib's httpx integration warns about the deprecated httpx on import).

Defences (checklist OA-18; RFC 9700 §4.4 mix-up, §4.5 code injection, §4.7 CSRF):
- `state`: 256 random bits, stored only hashed in a single-use `OAuthFlow` row that expires
  after ten minutes and is bound to the member and the browser session that started it;
- PKCE S256 on every authorization, the verifier sealed in the flow;
- mix-up: each Mastodon instance gets its own redirect URI (`…/mastodon/<registration id>`), the
  callback's key must be the flow's, and an `iss` parameter, when the server sends one
  (RFC 9207), must name the flow's server.
Every check passes before anything is sent to a token endpoint.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NoReturn

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from coop.config import Settings
from coop.connectors import oauth_apps, service, spec
from coop.connectors.builtin import mastodon
from coop.connectors.builtin.github import token_credentials
from coop.connectors.oauth_models import OAuthFlow
from coop.connectors.outbound import Guard, OutboundClient
from coop.connectors.registry import Registry
from coop.errors import (
    InvalidInputError,
    NotFoundError,
    OAuthCallbackError,
    UpstreamAuthorizationError,
)
from coop.types import utcnow
from coop.vault import MemberCipher, Vault

log = logging.getLogger("coop.connectors.oauth")

FLOW_LIFETIME = timedelta(minutes=10)
MAX_PENDING_FLOWS = 10
OAUTH_CONNECTORS = ("mastodon", "github")
FLOW_TABLE = "oauth_client_flow"

_MESSAGES = {
    "oauth_state_invalid": "This answer does not belong to a connection you started in this "
    "browser; start connecting again.",
    "oauth_state_expired": "Connecting took too long; start connecting again.",
    "oauth_mixup": "This answer came from a different server than the one you chose; start "
    "connecting again.",
    "oauth_code_missing": "The provider sent no authorization code; start connecting again.",
    "oauth_wrong_account": "The provider signed in another account than the handle you "
    "entered, so nothing was connected; start connecting again.",
}


@dataclass(frozen=True)
class Authorized:
    """What a completed flow hands to the connect flow: non-secret config and credentials.
    `connection_id` is set when the member was reconnecting an existing connection."""

    connector: str
    config: dict[str, str]
    credentials: dict[str, str]
    connection_id: uuid.UUID | None


def loopback_allowed(settings: Settings) -> bool:
    """Plain-http instances are accepted only on loopback, and only when the operator put
    loopback on the outbound allow-list (tests, local development)."""
    loopbacks = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))
    for item in settings.outbound_allow:
        if isinstance(item, str):
            if item == "localhost":
                return True
        elif any(a.version == item.version and a in item for a in loopbacks):
            return True
    return False


# -- start ---------------------------------------------------------------------------------


async def start(
    *,
    vault: Vault,
    registry: Registry,
    guard: Guard,
    settings: Settings,
    member_id: uuid.UUID,
    session_id: uuid.UUID,
    connector: str,
    instance: str | None = None,
    connection_id: uuid.UUID | None = None,
) -> str:
    """Begin an authorization; returns the upstream URL to send the member's browser to."""
    if connector not in OAUTH_CONNECTORS:
        raise NotFoundError("There is no such connector.", code="unknown_connector")
    registry.get(connector)
    if connection_id is not None:  # reconnecting: the connection must be theirs, same source
        view = await service.get_connection(
            vault=vault, registry=registry, member_id=member_id, connection_id=connection_id
        )
        if view.connector != connector:
            raise NotFoundError("There is no such connection.", code="connection_not_found")
        instance = instance or view.label
    if connector == "github":
        client = oauth_apps.github_client(
            registry, settings.issuer + oauth_apps.callback_path("github", "")
        )
    await purge_flows(member_id)
    cipher = await vault.cipher_for(member_id)
    if connector == "mastodon":
        base = _instance(instance or "", settings)
        await guard.check(base)
        async with OutboundClient(guard) as http:
            client = await oauth_apps.mastodon_client(
                vault, cipher, http, settings, member_id, base
            )
    state = generate_token(43)
    verifier = generate_token(64)
    flow_id = uuid.uuid4()
    now = utcnow()
    await OAuthFlow.create(
        id=flow_id,
        state_hash=Vault.token_hash(state),
        member_id=member_id,
        session_id=session_id,
        connector=connector,
        callback_key=client.callback_key,
        connection_id=connection_id,
        sealed=cipher.seal_json(
            {"verifier": verifier, "issuer": client.issuer, "redirect_uri": client.redirect_uri},
            table=FLOW_TABLE,
            column="sealed",
            row=flow_id,
        ),
        created_at=now,
        expires_at=now + FLOW_LIFETIME,
    )
    log.info("oauth flow started", extra={"connector": connector, "flow": str(flow_id)})
    params: dict[str, Any] = {
        "redirect_uri": client.redirect_uri,
        "state": state,
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
    }
    if client.scope:
        params["scope"] = client.scope
    url: str = prepare_grant_uri(
        client.authorize_url, client_id=client.client_id, response_type="code", **params
    )
    return url


def _instance(raw: str, settings: Settings) -> str:
    try:
        return mastodon.instance_url(raw, allow_loopback_http=loopback_allowed(settings))
    except spec.InvalidSourceError as exc:
        raise InvalidInputError(str(exc), code="invalid_instance") from None


async def purge_flows(member_id: uuid.UUID) -> None:
    """Expired flows go; a member keeps at most MAX_PENDING_FLOWS pending ones."""
    await OAuthFlow.filter(expires_at__lt=utcnow()).delete()
    stale = (
        await OAuthFlow.filter(member_id=member_id)
        .order_by("-created_at")
        .offset(MAX_PENDING_FLOWS - 1)
        .values_list("id", flat=True)
    )
    if stale:
        await OAuthFlow.filter(id__in=list(stale)).delete()


async def find_reconnect_target(
    *, vault: Vault, registry: Registry, member_id: uuid.UUID, authorized: Authorized
) -> uuid.UUID | None:
    """The member's existing connection that this authorization renews (same connector and the
    same Mastodon server or GitHub account), so connecting again never duplicates a source.
    A different account on the same service becomes a connection of its own."""
    source = authorized.config.get("instance") or authorized.config.get("handle")
    if not source:
        return None
    for view in await service.list_connections(vault=vault, registry=registry, member_id=member_id):
        if view.connector == authorized.connector and view.label == source:
            return view.id
    return None


# -- callback ------------------------------------------------------------------------------


async def finish(
    *,
    vault: Vault,
    registry: Registry,
    guard: Guard,
    member_id: uuid.UUID,
    session_id: uuid.UUID,
    connector: str,
    callback_key: str,
    params: Mapping[str, str],
) -> Authorized:
    """Check the authorization response against the flow it claims to answer, then redeem
    the code. Any mismatch raises OAuthCallbackError before a token request is made."""
    flow = await claim_flow(params.get("state"))
    if flow.member_id != member_id or flow.session_id != session_id:  # type: ignore[attr-defined]
        refuse("oauth_state_invalid", flow)
    if flow.expires_at <= utcnow():
        refuse("oauth_state_expired", flow)
    if flow.connector != connector or not hmac.compare_digest(flow.callback_key, callback_key):
        refuse("oauth_mixup", flow)
    cipher = await vault.cipher_for(member_id)
    sealed = cipher.open_json(flow.sealed, table=FLOW_TABLE, column="sealed", row=flow.id)
    issuer = params.get("iss")
    if issuer is not None and issuer.rstrip("/") != sealed["issuer"]:
        refuse("oauth_mixup", flow)
    if params.get("error"):
        raise OAuthCallbackError(
            "You did not allow coop to read this account, so nothing was connected.",
            code="oauth_denied",
        )
    code = params.get("code")
    if not code:
        refuse("oauth_code_missing", flow)
    client = await _client_for(flow, cipher, sealed, registry)
    handle: str | None = None
    async with OutboundClient(guard) as http:
        body = await _redeem(http, client, code, sealed["verifier"])
        if connector == "github":
            handle = await oauth_apps.github_login(http, registry, str(body["access_token"]))
    log.info("oauth flow completed", extra={"connector": connector, "flow": str(flow.id)})
    if connector == "mastodon":
        return Authorized(
            connector,
            {"instance": client.issuer},
            _mastodon_credentials(body, client),
            flow.connection_id,
        )
    config = {"handle": handle} if handle else {}
    return Authorized(connector, config, _github_credentials(body), flow.connection_id)


async def claim_flow(state: str | None) -> OAuthFlow:
    """The flow `state` belongs to, deleted in the same step: a state works once."""
    if not state:
        log.warning("oauth callback refused", extra={"code": "oauth_state_missing"})
        raise OAuthCallbackError(
            "The answer from the provider is missing its state; start connecting again.",
            code="oauth_state_missing",
        )
    flow = await OAuthFlow.get_or_none(state_hash=Vault.token_hash(state))
    if flow is None or await OAuthFlow.filter(id=flow.id).delete() != 1:
        log.warning("oauth callback refused", extra={"code": "oauth_state_invalid"})
        raise OAuthCallbackError(_MESSAGES["oauth_state_invalid"])
    return flow


def refuse(code: str, flow: OAuthFlow) -> NoReturn:
    log.warning("oauth callback refused", extra={"code": code, "flow": str(flow.id)})
    raise OAuthCallbackError(_MESSAGES[code], code=code)


async def _client_for(
    flow: OAuthFlow, cipher: MemberCipher, sealed: Mapping[str, Any], registry: Registry
) -> oauth_apps.Client:
    if flow.connector == "github":
        # The app's id and secret are operator settings: read them again at redemption.
        return oauth_apps.github_client(registry, sealed["redirect_uri"])
    client = await oauth_apps.registered_mastodon_client(
        cipher,
        uuid.UUID(flow.callback_key),
        flow.member_id,  # type: ignore[attr-defined]
    )
    if client is None or (client.issuer, client.redirect_uri) != (
        sealed["issuer"],
        sealed["redirect_uri"],
    ):
        refuse("oauth_mixup", flow)
    return client


async def _redeem(
    http: OutboundClient, client: oauth_apps.Client, code: str, verifier: str
) -> Mapping[str, Any]:
    """The token request (RFC 6749 §4.1.3 with RFC 7636 §4.5), client_secret_post."""
    body = prepare_token_request(
        "authorization_code",
        code=code,
        redirect_uri=client.redirect_uri,
        code_verifier=verifier,
        client_id=client.client_id,
        client_secret=client.client_secret,
    )
    try:
        response = await http.post(
            client.token_url,
            content=body.encode(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
        )
        data = response.json()
    except (httpx.HTTPError, ValueError, spec.InvalidSourceError):
        log.warning("oauth token request failed", extra={"code": "oauth_token_failed"})
        raise UpstreamAuthorizationError() from None
    error = data.get("error") if isinstance(data, dict) else "malformed"
    scheme = str(data.get("token_type", "bearer")).lower() if isinstance(data, dict) else ""
    if (
        response.status_code != 200
        or error
        or not isinstance(data.get("access_token"), str)
        or scheme != "bearer"
    ):
        log.warning(
            "oauth token request refused",
            extra={"code": "oauth_token_failed", "status": response.status_code},
        )
        raise UpstreamAuthorizationError()
    result: Mapping[str, Any] = data
    return result


def _mastodon_credentials(body: Mapping[str, Any], client: oauth_apps.Client) -> dict[str, str]:
    return {
        "access_token": str(body["access_token"]),
        "client_id": client.client_id,
        "client_secret": client.client_secret,
        "scope": str(body.get("scope", "")),
    }


def _github_credentials(body: Mapping[str, Any]) -> dict[str, str]:
    try:
        return token_credentials(body)
    except spec.PermanentUpstreamError:
        raise UpstreamAuthorizationError() from None


__all__ = [
    "FLOW_LIFETIME",
    "FLOW_TABLE",
    "Authorized",
    "claim_flow",
    "find_reconnect_target",
    "finish",
    "loopback_allowed",
    "purge_flows",
    "refuse",
    "start",
]
