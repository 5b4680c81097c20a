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
from tortoise.exceptions import IntegrityError

from coop.config import Settings
from coop.connectors import service, spec
from coop.connectors.builtin import mastodon
from coop.connectors.builtin.github import GitHubApp, token_credentials
from coop.connectors.oauth_models import MastodonAppRegistration, OAuthFlow
from coop.connectors.outbound import Guard, OutboundClient
from coop.connectors.registry import Registry
from coop.errors import (
    ConnectorNotConfiguredError,
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
CALLBACK_PATH = "/connectors/oauth/callback"
OAUTH_CONNECTORS = ("mastodon", "github")
FLOW_TABLE = "oauth_client_flow"
REGISTRATION_TABLE = "mastodon_app_registration"
REGISTRATION_PURPOSE = "mastodon-app"

_MESSAGES = {
    "oauth_state_invalid": "This answer does not belong to a connection you started in this "
    "browser; start connecting again.",
    "oauth_state_expired": "Connecting took too long; start connecting again.",
    "oauth_mixup": "This answer came from a different server than the one you chose; start "
    "connecting again.",
    "oauth_code_missing": "The provider sent no authorization code; start connecting again.",
}


@dataclass(frozen=True)
class Client:
    """coop's client registration at one authorization server, as one flow uses it."""

    connector: str
    issuer: str
    authorize_url: str
    token_url: str
    client_id: str
    client_secret: str
    scope: str | None
    redirect_uri: str
    callback_key: str


@dataclass(frozen=True)
class Authorized:
    """What a completed flow hands to the connect flow: non-secret config and credentials.
    `connection_id` is set when the member was reconnecting an existing connection."""

    connector: str
    config: dict[str, str]
    credentials: dict[str, str]
    connection_id: uuid.UUID | None


def callback_path(connector: str, key: str) -> str:
    if connector == "mastodon":
        return f"{CALLBACK_PATH}/mastodon/{key}"
    return f"{CALLBACK_PATH}/github"


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
        client = _github_client(registry, settings.issuer + callback_path("github", ""))
    await _purge(member_id)
    cipher = await vault.cipher_for(member_id)
    if connector == "mastodon":
        base = _instance(instance or "", settings)
        await guard.check(base)
        async with OutboundClient(guard) as http:
            client = await _mastodon_client(vault, cipher, http, settings, member_id, base)
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


async def _purge(member_id: uuid.UUID) -> None:
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


def _github_client(registry: Registry, redirect_uri: str) -> Client:
    app = getattr(registry.get("github"), "app", None)
    if not isinstance(app, GitHubApp) or not app.configured:
        raise ConnectorNotConfiguredError()
    return Client(
        connector="github",
        issuer=app.base_url,
        authorize_url=app.authorize_url,
        token_url=app.token_url,
        client_id=app.client_id,
        client_secret=app.client_secret,
        scope=None,
        redirect_uri=redirect_uri,
        callback_key="github",
    )


def _mastodon_from(reg_id: uuid.UUID, data: Mapping[str, str]) -> Client:
    base = data["instance"]
    return Client(
        connector="mastodon",
        issuer=base,
        authorize_url=f"{base}/oauth/authorize",
        token_url=f"{base}/oauth/token",
        client_id=data["client_id"],
        client_secret=data["client_secret"],
        scope=data["scopes"],
        redirect_uri=data["redirect_uri"],
        callback_key=str(reg_id),
    )


def _open_registration(cipher: MemberCipher, row: MastodonAppRegistration) -> dict[str, str]:
    data: dict[str, str] = cipher.open_json(
        row.sealed, table=REGISTRATION_TABLE, column="sealed", row=row.id
    )
    return data


async def _mastodon_client(
    vault: Vault,
    cipher: MemberCipher,
    http: OutboundClient,
    settings: Settings,
    member_id: uuid.UUID,
    base: str,
) -> Client:
    """coop's app on `base` for this member: the stored one, else registered now."""
    index = vault.blind_index(f"{member_id}\x00{base}", purpose=REGISTRATION_PURPOSE)
    row = await MastodonAppRegistration.get_or_none(instance_index=index)
    if row is not None:
        data = _open_registration(cipher, row)
        expected = settings.issuer + callback_path("mastodon", str(row.id))
        if data.get("scopes") == mastodon.SCOPES and data.get("redirect_uri") == expected:
            return _mastodon_from(row.id, data)
        await row.delete()  # older scopes or a moved server address: register again
    reg_id = uuid.uuid4()
    redirect_uri = settings.issuer + callback_path("mastodon", str(reg_id))
    registered = await _register(http, base, redirect_uri, settings.issuer)
    data = {**registered, "instance": base, "redirect_uri": redirect_uri, "scopes": mastodon.SCOPES}
    sealed = cipher.seal_json(data, table=REGISTRATION_TABLE, column="sealed", row=reg_id)
    try:
        await MastodonAppRegistration.create(
            id=reg_id, member_id=member_id, instance_index=index, sealed=sealed, created_at=utcnow()
        )
    except IntegrityError:  # a concurrent start registered first: use that one
        row = await MastodonAppRegistration.get(instance_index=index)
        return _mastodon_from(row.id, _open_registration(cipher, row))
    log.info("mastodon app registered", extra={"registration": str(reg_id)})
    return _mastodon_from(reg_id, data)


async def _register(
    http: OutboundClient, base: str, redirect_uri: str, website: str
) -> dict[str, str]:
    """`POST /api/v1/apps` on the instance: coop's client id and secret there."""
    failed = UpstreamAuthorizationError(
        "That Mastodon server did not accept coop's registration; check the address or try "
        "again later.",
        code="oauth_registration_failed",
    )
    try:
        response = await http.post(
            f"{base}/api/v1/apps",
            data={
                "client_name": "coop",
                "redirect_uris": redirect_uri,
                "scopes": mastodon.SCOPES,
                "website": website,
            },
            headers={"Accept": "application/json"},
        )
        body = response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError, spec.InvalidSourceError):
        raise failed from None
    if not isinstance(body, dict):
        raise failed
    client_id, secret = body.get("client_id"), body.get("client_secret")
    if not (isinstance(client_id, str) and client_id and isinstance(secret, str) and secret):
        raise failed
    return {"client_id": client_id, "client_secret": secret}


async def find_reconnect_target(
    *, vault: Vault, registry: Registry, member_id: uuid.UUID, authorized: Authorized
) -> uuid.UUID | None:
    """The member's existing connection that this authorization renews (same connector and,
    for Mastodon, the same instance), so connecting again never duplicates a source."""
    for view in await service.list_connections(vault=vault, registry=registry, member_id=member_id):
        if view.connector != authorized.connector:
            continue
        if authorized.config.get("instance", view.label) != view.label:
            continue
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
    flow = await _claim(params.get("state"))
    if flow.member_id != member_id or flow.session_id != session_id:  # type: ignore[attr-defined]
        _refuse("oauth_state_invalid", flow)
    if flow.expires_at <= utcnow():
        _refuse("oauth_state_expired", flow)
    if flow.connector != connector or not hmac.compare_digest(flow.callback_key, callback_key):
        _refuse("oauth_mixup", flow)
    cipher = await vault.cipher_for(member_id)
    sealed = cipher.open_json(flow.sealed, table=FLOW_TABLE, column="sealed", row=flow.id)
    issuer = params.get("iss")
    if issuer is not None and issuer.rstrip("/") != sealed["issuer"]:
        _refuse("oauth_mixup", flow)
    if params.get("error"):
        raise OAuthCallbackError(
            "You did not allow coop to read this account, so nothing was connected.",
            code="oauth_denied",
        )
    code = params.get("code")
    if not code:
        _refuse("oauth_code_missing", flow)
    client = await _client_for(flow, cipher, sealed, registry)
    async with OutboundClient(guard) as http:
        body = await _redeem(http, client, code, sealed["verifier"])
    log.info("oauth flow completed", extra={"connector": connector, "flow": str(flow.id)})
    if connector == "mastodon":
        return Authorized(
            connector,
            {"instance": client.issuer},
            _mastodon_credentials(body, client),
            flow.connection_id,
        )
    return Authorized(connector, {}, _github_credentials(body), flow.connection_id)


async def _claim(state: str | None) -> OAuthFlow:
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


def _refuse(code: str, flow: OAuthFlow) -> NoReturn:
    log.warning("oauth callback refused", extra={"code": code, "flow": str(flow.id)})
    raise OAuthCallbackError(_MESSAGES[code], code=code)


async def _client_for(
    flow: OAuthFlow, cipher: MemberCipher, sealed: Mapping[str, Any], registry: Registry
) -> Client:
    if flow.connector == "github":
        # The app's id and secret are operator settings: read them again at redemption.
        return _github_client(registry, sealed["redirect_uri"])
    row = await MastodonAppRegistration.get_or_none(
        id=uuid.UUID(flow.callback_key),
        member_id=flow.member_id,  # type: ignore[attr-defined]
    )
    if row is None:
        _refuse("oauth_mixup", flow)
    data = _open_registration(cipher, row)
    if data["instance"] != sealed["issuer"] or data["redirect_uri"] != sealed["redirect_uri"]:
        _refuse("oauth_mixup", flow)
    return _mastodon_from(row.id, data)


async def _redeem(
    http: OutboundClient, client: Client, code: str, verifier: str
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


def _mastodon_credentials(body: Mapping[str, Any], client: Client) -> dict[str, str]:
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
    "CALLBACK_PATH",
    "Authorized",
    "callback_path",
    "find_reconnect_target",
    "finish",
    "loopback_allowed",
    "start",
]
