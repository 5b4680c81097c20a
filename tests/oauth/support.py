"""Factories for OAuth, app and consent tests: members with sessions, apps, PKCE, the flow."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from coop.apps import service as apps
from coop.apps.service import RegisteredApp
from coop.config import Settings
from coop.http.auth import session_cookie_name
from coop.members import service as members
from coop.members import sessions
from coop.members.models import Member
from coop.vault import Vault

ISSUER = "http://127.0.0.1:8000"
REDIRECT = "https://app.example/callback"
PASSWORD = "correct horse battery staple"


def pkce() -> tuple[str, str]:
    """(verifier, S256 challenge)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")


async def make_member(vault: Vault) -> Member:
    email = f"m-{uuid.uuid4().hex[:10]}@example.org"
    return await members.create_member(vault=vault, email=email, password=PASSWORD)


async def log_in(
    client: httpx.AsyncClient, vault: Vault, settings: Settings, member: Member
) -> str:
    _, token = await sessions.start(vault=vault, settings=settings, member=member, user_agent="t")
    client.cookies.set(session_cookie_name(settings), token)
    return token


async def register(
    vault: Vault, *, redirect_uris: list[str] | None = None, public: bool = False, **kw: Any
) -> RegisteredApp:
    return await apps.create_app(
        name=kw.pop("name", "Example App"),
        redirect_uris=redirect_uris or [REDIRECT],
        public=public,
        vault=vault,
        **kw,
    )


def csrf_from(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def terms_version_from(html: str) -> str:
    """The app's terms version the consent page showed (a hidden field, like the CSRF token)."""
    found = re.search(r'name="terms_version" value="([0-9]+)"', html)
    assert found, "no terms version on the consent page"
    return found.group(1)


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def authorize_params(
    reg: RegisteredApp, challenge: str, *, scope: str = "profile score:reach", **extra: str
) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": reg.app.client_id,
        "redirect_uri": reg.app.redirect_uris[0],
        "scope": scope,
        "state": "st-" + secrets.token_urlsafe(8),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(extra)
    return params


@dataclass
class Flow:
    """One authorization: the code, its verifier and what was asked."""

    code: str
    verifier: str
    params: dict[str, str]
    location: str


async def consent(
    client: httpx.AsyncClient,
    params: dict[str, str],
    *,
    decision: str = "allow",
    scopes: list[str] | None = None,
    lifetime: str = "30d",
) -> httpx.Response:
    """Open the consent page and submit the decision; returns the POST's response."""
    page = await client.get("/oauth/authorize", params=params)
    assert page.status_code == 200, page.text
    form: dict[str, Any] = {
        **params,
        "csrf_token": csrf_from(page.text),
        "terms_version": terms_version_from(page.text),
        "decision": decision,
    }
    form["grant_scope"] = scopes if scopes is not None else params["scope"].split()
    form["lifetime"] = lifetime
    return await client.post(
        "/oauth/authorize", data=form, headers={"Sec-Fetch-Site": "same-origin"}
    )


async def authorize(
    client: httpx.AsyncClient, reg: RegisteredApp, *, scope: str = "profile score:reach", **kw: Any
) -> Flow:
    verifier, challenge = pkce()
    params = authorize_params(reg, challenge, scope=scope)
    response = await consent(client, params, **kw)
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    return Flow(query_of(location)["code"], verifier, params, location)


def client_auth(reg: RegisteredApp) -> httpx.BasicAuth | None:
    if reg.client_secret is None:
        return None
    return httpx.BasicAuth(reg.app.client_id, reg.client_secret)


async def token_request(
    client: httpx.AsyncClient, reg: RegisteredApp, data: dict[str, str], **kw: Any
) -> httpx.Response:
    body = dict(data)
    if reg.client_secret is None:
        body.setdefault("client_id", reg.app.client_id)
    auth = kw.pop("auth", client_auth(reg))
    kwargs: dict[str, Any] = {"data": body, **kw}
    if auth is not None:
        kwargs["auth"] = auth
    return await client.post("/oauth/token", **kwargs)


async def redeem(client: httpx.AsyncClient, reg: RegisteredApp, flow: Flow) -> httpx.Response:
    return await token_request(
        client,
        reg,
        {
            "grant_type": "authorization_code",
            "code": flow.code,
            "redirect_uri": flow.params["redirect_uri"],
            "code_verifier": flow.verifier,
        },
    )


async def introspect(client: httpx.AsyncClient, reg: RegisteredApp, token: str) -> dict[str, Any]:
    response = await client.post(
        "/oauth/introspect",
        data={"token": token},
        auth=client_auth(reg) or httpx.USE_CLIENT_DEFAULT,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
