"""Refresh tokens: rotation on every use, reuse detection that revokes the family, scope and
client binding, and the grant's live state (OA-10, OA-11, OA-12)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from coop.apps.service import RegisteredApp
from coop.consent import service as consent
from coop.consent.models import Grant
from coop.types import clock
from coop.vault import Vault
from tests.oauth.support import authorize, introspect, redeem, register, token_request

pytestmark = pytest.mark.usefixtures("db")


async def tokens_for(client: httpx.AsyncClient, reg: RegisteredApp, **kw: Any) -> dict[str, Any]:
    flow = await authorize(client, reg, **kw)
    response = await redeem(client, reg, flow)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def use_refresh(
    client: httpx.AsyncClient, reg: RegisteredApp, refresh_token: str, **extra: str
) -> httpx.Response:
    return await token_request(
        client, reg, {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}
    )


async def test_refresh_rotates_the_refresh_token(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    first = await tokens_for(member_client, reg)
    response = await use_refresh(member_client, reg, first["refresh_token"])
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert (await introspect(member_client, reg, second["access_token"]))["active"] is True


async def test_replayed_refresh_token_revokes_the_whole_family(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    r1 = (await tokens_for(member_client, reg))["refresh_token"]
    second = (await use_refresh(member_client, reg, r1)).json()
    replay = await use_refresh(member_client, reg, r1)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    again = await use_refresh(member_client, reg, second["refresh_token"])
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert await introspect(member_client, reg, second["access_token"]) == {"active": False}


async def test_older_generation_after_two_rotations_revokes_the_family(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    r1 = (await tokens_for(member_client, reg))["refresh_token"]
    r2 = (await use_refresh(member_client, reg, r1)).json()["refresh_token"]
    third = (await use_refresh(member_client, reg, r2)).json()
    assert (await use_refresh(member_client, reg, r1)).json()["error"] == "invalid_grant"
    assert (await use_refresh(member_client, reg, third["refresh_token"])).status_code == 400


async def test_retry_within_a_second_gets_no_grace_period(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    """Reuse leeway is 0: even an immediate retry of the same token is reuse."""
    reg = await register(vault)
    r1 = (await tokens_for(member_client, reg))["refresh_token"]
    first, second = await asyncio.gather(
        use_refresh(member_client, reg, r1), use_refresh(member_client, reg, r1)
    )
    assert sorted([first.status_code, second.status_code]) == [200, 400]
    # The refused twin is reuse: the whole family, the winner's new tokens included, is dead.
    winner = first if first.status_code == 200 else second
    again = await use_refresh(member_client, reg, winner.json()["refresh_token"])
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert (await introspect(member_client, reg, winner.json()["access_token"])) == {
        "active": False
    }


async def test_refresh_cannot_broaden_the_scope(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    body = await tokens_for(member_client, reg, scope="score:reach")
    response = await use_refresh(
        member_client, reg, body["refresh_token"], scope="score:reach profile"
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"
    assert "Granted now: score:reach." in response.json()["error_description"]


async def test_refresh_may_narrow_the_scope(member_client: httpx.AsyncClient, vault: Vault) -> None:
    reg = await register(vault)
    body = await tokens_for(member_client, reg)
    response = await use_refresh(member_client, reg, body["refresh_token"], scope="profile")
    assert response.status_code == 200
    assert response.json()["scope"] == "profile"


async def test_another_clients_refresh_token_is_invalid_grant(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg_a = await register(vault)
    reg_b = await register(vault, name="B")
    body = await tokens_for(member_client, reg_a)
    response = await use_refresh(member_client, reg_b, body["refresh_token"])
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    assert (await use_refresh(member_client, reg_a, body["refresh_token"])).status_code == 200


async def test_refresh_after_the_member_revoked_is_invalid_grant(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    body = await tokens_for(member_client, reg)
    grant = await Grant.get()
    await consent.revoke_grant(member_id=grant.member_id, grant_id=grant.id)
    response = await use_refresh(member_client, reg, body["refresh_token"])
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


async def test_refresh_while_sharing_is_paused_is_invalid_grant_and_works_after_resume(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    body = await tokens_for(member_client, reg)
    grant = await Grant.get()
    await consent.pause_sharing(member_id=grant.member_id)
    response = await use_refresh(member_client, reg, body["refresh_token"])
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    await consent.resume_sharing(member_id=grant.member_id)
    assert (await use_refresh(member_client, reg, body["refresh_token"])).status_code == 200


async def test_refresh_token_ends_with_the_grant(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    body = await tokens_for(member_client, reg, lifetime="1d")
    clock.advance(23 * 3600)
    refreshed = await use_refresh(member_client, reg, body["refresh_token"])
    assert refreshed.status_code == 200
    assert refreshed.json()["expires_in"] <= 3600
    clock.advance(3600 + 1)
    late = await use_refresh(member_client, reg, refreshed.json()["refresh_token"])
    assert late.status_code == 400 and late.json()["error"] == "invalid_grant"


async def test_access_token_never_outlives_the_grant(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    body = await tokens_for(member_client, reg, lifetime="1d")
    clock.advance(24 * 3600 - 600)
    refreshed = (await use_refresh(member_client, reg, body["refresh_token"])).json()
    assert refreshed["expires_in"] <= 600
