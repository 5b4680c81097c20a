"""\"Sign in with Bluesky\": coop as an AT Protocol OAuth client of the member's server.

The client identity follows COOP_ISSUER (atproto.com/specs/oauth, "Clients"):
- served over https, coop is a confidential web client: its `client_id` is the URL of the
  client metadata document it serves (CLIENT_METADATA_PATH), and it authenticates with
  `private_key_jwt`, signing with the ES256 key the vault derives (published at JWKS_PATH);
- served on a loopback IP over http (local development), it is the public loopback client
  `http://localhost?redirect_uri=…&scope=…`, which needs no metadata document;
- anything else cannot sign in with OAuth, and the catalogue keeps only app passwords.

A flow (`start` → the member's server → `finish`) keeps its state in the same single-use
`OAuthFlow` rows as the Mastodon and GitHub flows (state hashed; PKCE verifier, the session's
DPoP key and the resolved account sealed under the member's key). The token response must be
for the DID the handle resolved to, and the callback's `iss` must name the flow's server.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.common.security import generate_token

from coop.config import Settings
from coop.connectors import oauth_apps, service, spec
from coop.connectors.builtin import atproto, atproto_oauth
from coop.connectors.builtin.bluesky import BlueskyConnector, oauth_credentials
from coop.connectors.oauth_client import (
    FLOW_LIFETIME,
    FLOW_TABLE,
    Authorized,
    claim_flow,
    purge_flows,
    refuse,
)
from coop.connectors.oauth_models import OAuthFlow
from coop.connectors.outbound import Guard, OutboundClient
from coop.connectors.registry import Registry
from coop.errors import (
    InvalidInputError,
    NotFoundError,
    OAuthCallbackError,
    RateLimitedError,
    UpstreamAuthorizationError,
)
from coop.types import utcnow
from coop.vault import Vault
from coop.vault.jose import EcKey

log = logging.getLogger("coop.connectors.oauth")

CONNECTOR = "bluesky"
CLIENT_METADATA_PATH = "/oauth/bluesky/client-metadata.json"
JWKS_PATH = "/oauth/bluesky/jwks.json"
CALLBACK_PATH = f"{oauth_apps.CALLBACK_PATH}/bluesky"
LOOPBACK_HOSTS = ("127.0.0.1", "::1")


def client_for(settings: Settings, vault: Vault) -> atproto_oauth.Client | None:
    """coop's client identity at every atproto authorization server, or None (no OAuth)."""
    issuer = httpx.URL(settings.issuer)
    redirect_uri = settings.issuer + CALLBACK_PATH
    if issuer.scheme == "https":
        client_id = settings.issuer + CLIENT_METADATA_PATH
        return atproto_oauth.Client(client_id, redirect_uri, vault.atproto_client_key())
    if issuer.scheme == "http" and issuer.host in LOOPBACK_HOSTS:
        query = urlencode({"redirect_uri": redirect_uri, "scope": atproto_oauth.SCOPE})
        return atproto_oauth.Client(f"http://localhost?{query}", redirect_uri)
    return None


def client_metadata(settings: Settings, vault: Vault) -> dict[str, Any] | None:
    """The client metadata document (atproto OAuth "Client ID Metadata Document")."""
    client = client_for(settings, vault)
    if client is None or client.key is None:
        return None
    return {
        "client_id": client.client_id,
        "client_name": "coop",
        "client_uri": settings.issuer,
        "application_type": "web",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "redirect_uris": [client.redirect_uri],
        "scope": atproto_oauth.SCOPE,
        "dpop_bound_access_tokens": True,
        "token_endpoint_auth_method": "private_key_jwt",
        "token_endpoint_auth_signing_alg": "ES256",
        "jwks_uri": settings.issuer + JWKS_PATH,
    }


def jwks(vault: Vault) -> dict[str, Any]:
    return {"keys": [vault.atproto_client_key().public_jwk()]}


def attach(registry: Registry, settings: Settings, vault: Vault) -> None:
    """Give the installed Bluesky connector coop's client identity (to refresh and revoke)."""
    connector = registry.find(CONNECTOR)
    if isinstance(connector, BlueskyConnector):
        connector.oauth_client = client_for(settings, vault)


def _connector(registry: Registry) -> BlueskyConnector:
    connector = registry.get(CONNECTOR)
    if not isinstance(connector, BlueskyConnector):
        raise NotFoundError("There is no such connector.", code="unknown_connector")
    return connector


@contextlib.contextmanager
def _member_errors() -> Iterator[None]:
    """The connector contract's errors as the member-facing errors of docs/errors.md."""
    try:
        yield
    except spec.InvalidSourceError as exc:
        raise InvalidInputError(str(exc), code=exc.code) from None
    except spec.Throttled as exc:
        throttled = RateLimitedError(
            "The server asks coop to wait before trying again; try again in a few minutes.",
            retry_after=int(exc.retry_after),
        )
        throttled.code = "upstream_throttled"
        raise throttled from None
    except spec.ConnectorError as exc:
        log.warning("bluesky oauth failed", extra={"error": type(exc).__name__})
        raise UpstreamAuthorizationError(
            "The server could not be reached or answered strangely; nothing was connected.",
            code="upstream_login_failed",
        ) from None


async def start(
    *,
    vault: Vault,
    registry: Registry,
    guard: Guard,
    settings: Settings,
    member_id: uuid.UUID,
    session_id: uuid.UUID,
    handle: str,
    connection_id: uuid.UUID | None = None,
) -> str:
    """Resolve the handle, discover its authorization server, push the authorization request;
    returns the URL to send the member's browser to."""
    connector = _connector(registry)
    client = client_for(settings, vault)
    if client is None:
        raise InvalidInputError(
            "This cooperative cannot offer signing in with Bluesky (it is not served over "
            "https); connect with an app password instead.",
            code="bluesky_oauth_unavailable",
        )
    if connection_id is not None:
        view = await service.get_connection(
            vault=vault, registry=registry, member_id=member_id, connection_id=connection_id
        )
        if view.connector != CONNECTOR:
            raise NotFoundError("There is no such connection.", code="connection_not_found")
    state, verifier = generate_token(43), generate_token(64)
    dpop = atproto_oauth.DPoP(EcKey.generate())
    with _member_errors():
        wanted = atproto.normalize_handle(handle)
        async with OutboundClient(guard) as http:
            who = await atproto.resolve(
                http, resolver=connector.resolver, plc=connector.plc, handle=wanted
            )
            server = await atproto_oauth.discover(http, who.pds)
            request_uri = await atproto_oauth.push_authorization(
                http, server, client, dpop, state=state, verifier=verifier, login_hint=wanted
            )
    await _save_flow(
        vault,
        member_id=member_id,
        session_id=session_id,
        state=state,
        connection_id=connection_id,
        sealed={
            "verifier": verifier,
            "issuer": server.issuer,
            "server": server.as_dict(),
            "client_id": client.client_id,
            "dpop_jwk": dpop.key.private_jwk(),
            "nonces": dpop.nonces,
            "did": who.did,
            "handle": who.handle,
            "pds": who.pds,
        },
    )
    return atproto_oauth.authorization_url(server, client, request_uri)


async def _save_flow(
    vault: Vault,
    *,
    member_id: uuid.UUID,
    session_id: uuid.UUID,
    state: str,
    connection_id: uuid.UUID | None,
    sealed: Mapping[str, Any],
) -> None:
    await purge_flows(member_id)
    cipher = await vault.cipher_for(member_id)
    flow_id, now = uuid.uuid4(), utcnow()
    await OAuthFlow.create(
        id=flow_id,
        state_hash=Vault.token_hash(state),
        member_id=member_id,
        session_id=session_id,
        connector=CONNECTOR,
        callback_key=CONNECTOR,
        connection_id=connection_id,
        sealed=cipher.seal_json(dict(sealed), table=FLOW_TABLE, column="sealed", row=flow_id),
        created_at=now,
        expires_at=now + FLOW_LIFETIME,
    )
    log.info("oauth flow started", extra={"connector": CONNECTOR, "flow": str(flow_id)})


async def finish(
    *,
    vault: Vault,
    registry: Registry,
    guard: Guard,
    settings: Settings,
    member_id: uuid.UUID,
    session_id: uuid.UUID,
    params: Mapping[str, str],
) -> Authorized:
    """Check the answer against its flow, redeem the code (PKCE, DPoP, client assertion) and
    check that the tokens are for the account the handle named."""
    flow = await claim_flow(params.get("state"))
    if flow.member_id != member_id or flow.session_id != session_id:  # type: ignore[attr-defined]
        refuse("oauth_state_invalid", flow)
    if flow.expires_at <= utcnow():
        refuse("oauth_state_expired", flow)
    if flow.connector != CONNECTOR:
        refuse("oauth_mixup", flow)
    cipher = await vault.cipher_for(member_id)
    sealed = cipher.open_json(flow.sealed, table=FLOW_TABLE, column="sealed", row=flow.id)
    if params.get("iss") != sealed["issuer"]:  # atproto servers always send `iss` (RFC 9207)
        refuse("oauth_mixup", flow)
    if params.get("error"):
        raise OAuthCallbackError(
            "You did not allow coop to read this account, so nothing was connected.",
            code="oauth_denied",
        )
    code = params.get("code")
    if not code:
        refuse("oauth_code_missing", flow)
    client = client_for(settings, vault)
    if client is None or client.client_id != sealed["client_id"]:
        refuse("oauth_mixup", flow)
    server = atproto_oauth.AuthServer.from_dict(sealed["server"])
    dpop = atproto_oauth.DPoP(EcKey.from_private_jwk(sealed["dpop_jwk"]), dict(sealed["nonces"]))
    async with OutboundClient(guard) as http:
        try:
            tokens = await atproto_oauth.redeem(
                http, server, client, dpop, code=code, verifier=sealed["verifier"]
            )
        except spec.ConnectorError as exc:
            log.warning("oauth token request failed", extra={"error": type(exc).__name__})
            raise UpstreamAuthorizationError() from None
        if tokens.sub != sealed["did"]:
            with contextlib.suppress(spec.ConnectorError):  # leave no stray session behind
                await atproto_oauth.revoke(http, server, client, dpop, tokens.refresh_token)
            refuse("oauth_wrong_account", flow)
    log.info("oauth flow completed", extra={"connector": CONNECTOR, "flow": str(flow.id)})
    return Authorized(
        CONNECTOR,
        {"handle": sealed["handle"], "did": sealed["did"], "pds": sealed["pds"]},
        oauth_credentials(tokens, server, client, dpop),
        flow.connection_id,
    )


__all__ = [
    "CALLBACK_PATH",
    "CLIENT_METADATA_PATH",
    "JWKS_PATH",
    "attach",
    "client_for",
    "client_metadata",
    "finish",
    "jwks",
    "start",
]
