"""RFC 7662 introspection (OA-14)."""

from __future__ import annotations

import httpx
import pytest

from coop.consent.models import Grant
from coop.types import clock
from coop.vault import Vault
from tests.oauth.support import ISSUER, authorize, client_auth, introspect, redeem, register

pytestmark = pytest.mark.usefixtures("db")


async def test_active_token_is_described_with_the_pairwise_subject(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    tokens = (await redeem(member_client, reg, await authorize(member_client, reg))).json()
    info = await introspect(member_client, reg, tokens["access_token"])
    grant = await Grant.get()
    assert info["active"] is True
    assert info["scope"] == "profile score:reach"
    assert info["client_id"] == reg.app.client_id
    assert info["sub"] == grant.subject != str(grant.member_id)
    assert info["iss"] == ISSUER
    assert info["exp"] > info["iat"]


@pytest.mark.parametrize("auth", ["none", "bad"])
async def test_introspection_needs_client_authentication(
    member_client: httpx.AsyncClient, vault: Vault, auth: str
) -> None:
    reg = await register(vault)
    data = {"token": "whatever"}
    if auth == "none":
        response = await member_client.post("/oauth/introspect", data=data)
    else:
        bad = httpx.BasicAuth(reg.app.client_id, "wrong")
        response = await member_client.post("/oauth/introspect", data=data, auth=bad)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_public_clients_cannot_introspect(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault, public=True)
    response = await member_client.post(
        "/oauth/introspect", data={"token": "x", "client_id": reg.app.client_id}
    )
    assert response.status_code == 401


async def test_unknown_expired_revoked_and_foreign_tokens_are_just_inactive(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    other = await register(vault, name="Other")
    tokens = (await redeem(member_client, reg, await authorize(member_client, reg))).json()
    assert await introspect(member_client, reg, "coop_at_unknown") == {"active": False}
    assert await introspect(member_client, other, tokens["access_token"]) == {"active": False}
    clock.advance(3601)
    assert await introspect(member_client, reg, tokens["access_token"]) == {"active": False}
    clock.reset()
    await member_client.post(
        "/oauth/revoke", data={"token": tokens["refresh_token"]}, auth=client_auth(reg)
    )
    response = await member_client.post(
        "/oauth/introspect", data={"token": tokens["access_token"]}, auth=client_auth(reg)
    )
    assert response.json() == {"active": False}
    assert response.headers["cache-control"] == "no-store"
