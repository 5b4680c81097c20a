"""coop's client registrations at the authorization servers it talks to.

GitHub: one OAuth app configured by the operator (COOP_GITHUB_*). Mastodon: every instance is
its own authorization server, so coop registers itself there (`POST /api/v1/apps`) on first
use. The registration is kept per member and instance, sealed under the member's key like every
other credential, so erasure removes it and an instance learns nothing about other members. Its
row id is the callback key: each instance answers at its own redirect URI (mix-up defence).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

import httpx
from tortoise.exceptions import IntegrityError

from coop.config import Settings
from coop.connectors import spec
from coop.connectors.builtin import mastodon
from coop.connectors.builtin.github import GitHubApp
from coop.connectors.oauth_models import MastodonAppRegistration
from coop.connectors.outbound import OutboundClient
from coop.connectors.registry import Registry
from coop.errors import ConnectorNotConfiguredError, UpstreamAuthorizationError
from coop.types import utcnow
from coop.vault import MemberCipher, Vault

log = logging.getLogger("coop.connectors.oauth")

CALLBACK_PATH = "/connectors/oauth/callback"
REGISTRATION_TABLE = "mastodon_app_registration"
REGISTRATION_PURPOSE = "mastodon-app"


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


def callback_path(connector: str, key: str) -> str:
    if connector == "mastodon":
        return f"{CALLBACK_PATH}/mastodon/{key}"
    return f"{CALLBACK_PATH}/github"


def github_client(registry: Registry, redirect_uri: str) -> Client:
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


async def github_login(http: OutboundClient, registry: Registry, access_token: str) -> str | None:
    """The login the new token belongs to (the connection's label, and how a reconnect finds
    the connection it renews). None when GitHub does not say: connecting still works."""
    app = getattr(registry.get("github"), "app", None)
    if not isinstance(app, GitHubApp):
        return None
    try:
        response = await http.get(
            f"{app.api_url}/user",
            headers={
                "Authorization": f"Bearer {access_token}",
                "Accept": "application/vnd.github+json",
            },
        )
        login = response.json().get("login") if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError, AttributeError, spec.InvalidSourceError):
        login = None
    if not isinstance(login, str) or not login:
        log.warning("github login unknown after connecting", extra={"code": "upstream_error"})
        return None
    return login


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


async def mastodon_client(
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


async def registered_mastodon_client(
    cipher: MemberCipher, registration_id: uuid.UUID, member_id: uuid.UUID
) -> Client | None:
    """The member's stored registration with this id (the callback key), if any."""
    row = await MastodonAppRegistration.get_or_none(id=registration_id, member_id=member_id)
    return None if row is None else _mastodon_from(row.id, _open_registration(cipher, row))


__all__ = [
    "CALLBACK_PATH",
    "Client",
    "callback_path",
    "github_client",
    "github_login",
    "mastodon_client",
    "registered_mastodon_client",
]
