"""App registration (RFC 7591-style client information) and client authentication."""

from __future__ import annotations

import hmac
import logging
import secrets
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from tortoise.transactions import in_transaction

from coop.errors import (
    InvalidClientError,
    InvalidClientMetadataError,
    InvalidInputError,
    InvalidRedirectUriError,
    NotFoundError,
)
from coop.types import utcnow
from coop.vault import Vault

from .models import App
from .redirects import LOOPBACK_HOSTS, MAX_URL, parse_redirect_uri
from .terms import NO_TERMS, Terms, get_terms, store_terms

log = logging.getLogger("coop.apps")

# RFC 8252 §7.3: native apps get an ephemeral port on a loopback IP literal.
PORT_FLEXIBLE_HOSTS = frozenset({"127.0.0.1", "[::1]"})
MAX_REDIRECT_URIS = 10
MAX_NAME = 100
GRANT_TYPES = ("authorization_code", "refresh_token")


@dataclass(frozen=True)
class RegisteredApp:
    """A new app and its secrets: the only moment they are shown."""

    app: App
    client_secret: str | None
    webhook_secret: str | None = None
    terms: Terms = NO_TERMS

    def client_information(self) -> dict[str, Any]:
        """RFC 7591 §3.2.1 client information response."""
        info: dict[str, Any] = {
            "client_id": self.app.client_id,
            "client_name": self.app.name,
            "redirect_uris": list(self.app.redirect_uris),
            "token_endpoint_auth_method": self.app.token_endpoint_auth_method,
            "grant_types": list(GRANT_TYPES),
            "response_types": ["code"],
            "client_id_issued_at": int(self.app.created_at.timestamp()),
        }
        if self.client_secret is not None:
            info["client_secret"] = self.client_secret
            info["client_secret_expires_at"] = 0
        if self.app.homepage:
            info["client_uri"] = self.app.homepage
        if self.webhook_secret is not None:
            info["webhook_url"] = self.app.webhook_url
            info["webhook_secret"] = self.webhook_secret
        if self.app.score_notices:
            info["score_notices"] = True
        info.update(self.terms.metadata())
        return info


def _raw_host(netloc: str) -> str:
    """The host exactly as written (case kept), without user info or port."""
    hostport = netloc.rsplit("@", 1)[-1]
    if hostport.startswith("["):
        return hostport.split("]", 1)[0] + "]"
    return hostport.split(":", 1)[0]


def is_loopback_http(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme == "http" and _raw_host(parts.netloc).lower() in LOOPBACK_HOSTS


def validate_redirect_uri(uri: str) -> str:
    """`uri` (trimmed) when it is an acceptable redirect URI (see coop.apps.redirects), else
    InvalidRedirectUriError. RFC 9700 §2.1, §4.1.3: compared byte for byte, so exact."""
    uri = uri.strip()
    parse_redirect_uri(uri)
    return uri


def _validate_optional_url(value: str | None, label: str) -> str | None:
    if value is None or not value.strip():
        return None
    value = value.strip()
    parts = urlsplit(value)
    if len(value) > MAX_URL or parts.scheme not in {"https", "http"} or not parts.hostname:
        raise InvalidInputError(f"{label} must be an absolute http(s) URL.")
    if parts.scheme == "http" and not is_loopback_http(value):
        raise InvalidInputError(f"{label} must use https.")
    return value


def validate_registration(
    *, name: str, redirect_uris: list[str], homepage: str | None, webhook_url: str | None
) -> tuple[str, list[str], str | None, str | None]:
    clean_name = " ".join(name.split())
    if not clean_name or len(clean_name) > MAX_NAME:
        raise InvalidInputError(f"The app name must be 1 to {MAX_NAME} characters.")
    if not redirect_uris:
        raise InvalidRedirectUriError("Register at least one redirect URI.")
    if len(redirect_uris) > MAX_REDIRECT_URIS:
        raise InvalidRedirectUriError(f"At most {MAX_REDIRECT_URIS} redirect URIs.")
    uris = list(dict.fromkeys(validate_redirect_uri(u) for u in redirect_uris))
    return (
        clean_name,
        uris,
        _validate_optional_url(homepage, "The homepage"),
        _validate_optional_url(webhook_url, "The webhook URL"),
    )


async def create_app(
    *,
    name: str,
    redirect_uris: list[str],
    public: bool = False,
    homepage: str | None = None,
    webhook_url: str | None = None,
    owner_id: uuid.UUID | None = None,
    vault: Vault | None = None,
    terms: Terms = NO_TERMS,
    score_notices: bool = False,
) -> RegisteredApp:
    """Register an app. `owner_id` is None for apps the operator registers with the CLI.
    `terms` (see `apps.terms.validate_terms`) become its version 1 when it declares any.
    `score_notices` asks for signed score-change notices at the webhook URL (required then).

    With a webhook URL the app also gets a webhook signing secret, derived by `vault` (which
    is then required) and shown only here. Public clients get one too.
    """
    name, uris, homepage, webhook_url = validate_registration(
        name=name, redirect_uris=redirect_uris, homepage=homepage, webhook_url=webhook_url
    )
    if score_notices and not webhook_url:
        raise InvalidClientMetadataError("Score-change notices need a webhook URL to go to.")
    if webhook_url and vault is None:
        raise TypeError("create_app needs the vault to derive a webhook secret")
    secret = None if public else "coop_cs_" + secrets.token_urlsafe(32)
    async with in_transaction():
        app = await App.create(
            id=uuid.uuid4(),
            client_id="coop_" + secrets.token_urlsafe(18),
            secret_hash=Vault.token_hash(secret) if secret else None,
            name=name,
            homepage=homepage,
            redirect_uris=uris,
            public=public,
            webhook_url=webhook_url,
            webhook_salt=_new_salt(),
            score_notices=score_notices,
            owner_id=owner_id,
            created_at=utcnow(),
        )
        stored = await store_terms(app, terms)
    webhook_secret = webhook_secret_of(vault, app) if vault and webhook_url else None
    return RegisteredApp(app=app, client_secret=secret, webhook_secret=webhook_secret, terms=stored)


async def change_terms(
    *,
    terms: Terms,
    client_id: str | None = None,
    app_id: uuid.UUID | None = None,
    owner_id: uuid.UUID | None = None,
) -> Terms:
    """Declare new terms for an app (by client id for the operator, by id for its owner).

    Each member's grant then allows no reads until the member agrees to the new words
    (the grant keeps the version it was given under; see consent.grants.reads_allowed).
    """
    async with in_transaction():
        query = App.filter(client_id=client_id) if client_id else App.filter(id=app_id)
        if owner_id is not None:
            query = query.filter(owner_id=owner_id)
        app = await query.select_for_update().first()
        if app is None or (client_id is None and app_id is None):
            raise NotFoundError("No app has this client ID.")
        stored = await store_terms(app, terms)
    log.info("app terms", extra={"app": str(app.id), "version": stored.version})
    return stored


async def current_terms(app: App) -> Terms:
    return await get_terms(app_id=app.id, version=app.terms_version)


def _new_salt() -> str:
    return secrets.token_urlsafe(24)


def webhook_secret_of(vault: Vault, app: App) -> str | None:
    """The secret that signs `app`'s deauthorization notices (None: no webhook to sign for)."""
    if not app.webhook_url or not app.webhook_salt:
        return None
    return vault.app_webhook_secret(app.client_id, app.webhook_salt)


async def rotate_webhook_secret(*, vault: Vault, client_id: str) -> str:
    """Give an app a new webhook secret (a new salt): the old one stops verifying at once."""
    app = await get_app(client_id=client_id)
    if app is None:
        raise NotFoundError("No app has this client ID.")
    if not app.webhook_url:
        raise InvalidInputError("This app has no webhook URL, so it has no webhook secret.")
    salt = _new_salt()
    async with in_transaction():
        await App.filter(id=app.id).update(webhook_salt=salt)
    log.info("webhook secret rotated", extra={"app": str(app.id)})
    return vault.app_webhook_secret(app.client_id, salt)


async def get_app(*, client_id: str) -> App | None:
    if not client_id or len(client_id) > 64:
        return None
    return await App.get_or_none(client_id=client_id)


async def get_apps(*, ids: list[uuid.UUID]) -> dict[uuid.UUID, App]:
    return {app.id: app for app in await App.filter(id__in=ids)}


async def list_apps(*, owner_id: uuid.UUID) -> list[App]:
    return await App.filter(owner_id=owner_id).order_by("created_at")


async def delete_app(*, owner_id: uuid.UUID, app_id: uuid.UUID) -> None:
    """Delete an app its owner registered; its grants and tokens go with it."""
    async with in_transaction():
        deleted = await App.filter(id=app_id, owner_id=owner_id).delete()
    if not deleted:
        raise NotFoundError()


async def authenticate_client(*, client_id: str | None, client_secret: str | None) -> App:
    """RFC 6749 §2.3: a confidential client proves its secret, a public client sends none.

    Any failure is the same `invalid_client`, so the error is no oracle for client ids.
    """
    app = await get_app(client_id=client_id or "")
    if app is None:
        raise InvalidClientError()
    if app.public:
        if client_secret:
            raise InvalidClientError()
        return app
    if not client_secret or app.secret_hash is None:
        raise InvalidClientError()
    if not hmac.compare_digest(Vault.token_hash(client_secret), app.secret_hash):
        raise InvalidClientError()
    return app


def match_redirect_uri(app: App, uri: str | None) -> str | None:
    """The registered URI this request may use, or None (RFC 9700 §4.1.3: exact match).

    The only tolerated difference is the port of a loopback IP literal (RFC 8252 §7.3).
    Without a `redirect_uri`, a client with exactly one registered URI uses it.
    """
    if uri is None or uri == "":
        return app.redirect_uris[0] if len(app.redirect_uris) == 1 else None
    if uri in app.redirect_uris:
        return uri
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return None
    host = _raw_host(parts.netloc)
    if parts.scheme != "http" or host not in PORT_FLEXIBLE_HOSTS or "@" in parts.netloc:
        return None
    for registered in app.redirect_uris:
        reg = urlsplit(registered)
        if (
            reg.scheme == "http"
            and _raw_host(reg.netloc) == host
            and (reg.path, reg.query, reg.fragment) == (parts.path, parts.query, parts.fragment)
        ):
            return uri
    return None
