"""RFC 7009 revocation (OA-13)."""

from __future__ import annotations

import httpx
import pytest

from coop.vault import Vault
from tests.oauth.support import authorize, client_auth, introspect, redeem, register

pytestmark = pytest.mark.usefixtures("db")


async def issued(client: httpx.AsyncClient, reg: object) -> dict[str, str]:
    flow = await authorize(client, reg)  # type: ignore[arg-type]
    body: dict[str, str] = (await redeem(client, reg, flow)).json()  # type: ignore[arg-type]
    return body


async def revoke(
    client: httpx.AsyncClient, auth: httpx.BasicAuth | None, data: dict[str, str]
) -> httpx.Response:
    if auth is None:
        return await client.post("/oauth/revoke", data=data)
    return await client.post("/oauth/revoke", data=data, auth=auth)


async def test_revoking_a_refresh_token_kills_its_access_tokens(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    tokens = await issued(member_client, reg)
    response = await revoke(member_client, client_auth(reg), {"token": tokens["refresh_token"]})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert await introspect(member_client, reg, tokens["access_token"]) == {"active": False}
    assert await introspect(member_client, reg, tokens["refresh_token"]) == {"active": False}


async def test_revoking_an_access_token_also_revokes_its_refresh_token(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    """Pinned (RFC 7009 §2.1 allows it): the pair issued together ends together."""
    reg = await register(vault)
    tokens = await issued(member_client, reg)
    await revoke(member_client, client_auth(reg), {"token": tokens["access_token"]})
    assert await introspect(member_client, reg, tokens["access_token"]) == {"active": False}
    assert await introspect(member_client, reg, tokens["refresh_token"]) == {"active": False}


async def test_revoking_an_unknown_token_is_200(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    for garbage in ("nonsense", "coop_rt_" + "A" * 43, "coop_at_x"):
        response = await revoke(member_client, client_auth(reg), {"token": garbage})
        assert response.status_code == 200


async def test_revocation_with_bad_client_credentials_is_401(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    tokens = await issued(member_client, reg)
    bad = httpx.BasicAuth(reg.app.client_id, "wrong")
    response = await revoke(member_client, bad, {"token": tokens["refresh_token"]})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert "www-authenticate" in response.headers
    assert (await introspect(member_client, reg, tokens["access_token"]))["active"] is True


async def test_revoking_another_clients_token_is_a_200_no_op(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    """Pinned: 200 and nothing revoked (no oracle about other clients' tokens)."""
    reg_a = await register(vault)
    reg_b = await register(vault, name="B")
    tokens = await issued(member_client, reg_a)
    response = await revoke(member_client, client_auth(reg_b), {"token": tokens["refresh_token"]})
    assert response.status_code == 200
    assert (await introspect(member_client, reg_a, tokens["access_token"]))["active"] is True


async def test_wrong_token_type_hint_still_finds_the_token(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    tokens = await issued(member_client, reg)
    data = {"token": tokens["refresh_token"], "token_type_hint": "access_token"}
    assert (await revoke(member_client, client_auth(reg), data)).status_code == 200
    assert await introspect(member_client, reg, tokens["refresh_token"]) == {"active": False}


async def test_public_clients_may_revoke_their_tokens(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault, public=True)
    tokens = await issued(member_client, reg)
    data = {"token": tokens["refresh_token"], "client_id": reg.app.client_id}
    assert (await revoke(member_client, None, data)).status_code == 200
    from coop.consent.service import resolve_bearer

    assert await resolve_bearer(tokens["access_token"]) is None


async def test_revocation_without_token_is_invalid_request(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    response = await revoke(member_client, client_auth(reg), {})
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
