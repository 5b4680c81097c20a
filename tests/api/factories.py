"""Factories for API tests: members, apps, grants, app tokens, personal tokens, GraphQL calls."""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from coop.apps import service as apps
from coop.consent import grants, personal, tokens
from coop.members import service as members
from coop.members.models import Member
from coop.vault import Vault

REDIRECT = "https://app.example/callback"
PASSWORD = "correct horse battery staple"


@dataclass
class AppToken:
    access_token: str
    refresh_token: str | None
    grant_id: uuid.UUID
    app_id: uuid.UUID
    client_id: str


async def make_member(vault: Vault) -> Member:
    email = f"m-{uuid.uuid4().hex[:10]}@example.org"
    return await members.create_member(vault=vault, email=email, password=PASSWORD)


async def make_app(vault: Vault, name: str = "Example App") -> apps.RegisteredApp:
    return await apps.create_app(name=name, redirect_uris=[REDIRECT])


async def grant_token(
    member: Member,
    app: apps.RegisteredApp,
    scopes: list[str],
    *,
    lifetime: str = "30d",
) -> AppToken:
    """A member grants `scopes` to `app`; the app redeems a code (PKCE S256) for tokens."""
    # Under the app's terms as they are now (what the consent page would have shown).
    current = (await apps.get_apps(ids=[app.app.id]))[app.app.id].terms_version
    grant = await grants.create_grant(
        member_id=member.id,
        app_id=app.app.id,
        scopes=scopes,
        lifetime=lifetime,
        terms_version=current,
    )
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    )
    code = await tokens.create_code(
        grant=grant,
        client_id=app.app.client_id,
        redirect_uri=REDIRECT,
        redirect_uri_given=True,
        code_challenge=challenge,
    )
    issued = await tokens.exchange_code(
        code=code, client_id=app.app.client_id, redirect_uri=REDIRECT, code_verifier=verifier
    )
    return AppToken(
        issued.access_token, issued.refresh_token, grant.id, app.app.id, app.app.client_id
    )


async def personal_token(member: Member, scopes: list[str], lifetime: str = "30d") -> str:
    created = await personal.create_personal_token(
        member_id=member.id, name="cli", scopes=scopes, lifetime=lifetime
    )
    return created.token


async def gql(
    client: httpx.AsyncClient,
    token: str | None,
    query: str,
    variables: dict[str, Any] | None = None,
    **kw: Any,
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    headers.update(kw.pop("headers", {}))
    body: dict[str, Any] = {"query": query}
    if variables is not None:
        body["variables"] = variables
    return await client.post("/graphql", json=body, headers=headers, **kw)


def codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors") or []]
