"""Disclosure levels over OAuth: asking for a band or a threshold, the member lowering a
score on the consent page, and refreshes that may lower a level but never raise it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from coop.consent.models import Grant
from coop.vault import Vault
from tests.oauth.support import (
    authorize,
    authorize_params,
    consent,
    introspect,
    pkce,
    query_of,
    redeem,
    register,
    token_request,
)

pytestmark = pytest.mark.usefixtures("db")


async def _tokens(client: httpx.AsyncClient, reg: Any, **kw: Any) -> dict[str, Any]:
    response = await redeem(client, reg, await authorize(client, reg, **kw))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _refresh(client: httpx.AsyncClient, reg: Any, token: str, scope: str) -> httpx.Response:
    data = {"grant_type": "refresh_token", "refresh_token": token, "scope": scope}
    return await token_request(client, reg, data)


async def test_an_app_asks_for_a_threshold_and_gets_exactly_it(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    params = authorize_params(reg, pkce()[1], scope="profile score:reach:atleast:60")
    page = (await member_client.get("/oauth/authorize", params=params)).text
    assert "only whether it is at least 60" in page and "the exact value" not in page
    body = await _tokens(member_client, reg, scope="profile score:reach:atleast:60")
    assert body["scope"] == "profile score:reach:atleast:60"
    seen = await introspect(member_client, reg, body["access_token"])
    assert seen["scope"] == "profile score:reach:atleast:60"


async def test_the_member_lowers_exact_to_band_and_history_goes_with_the_exact_value(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    params = authorize_params(reg, pkce()[1], scope="score:reach score:reach:history profile")
    page = (await member_client.get("/oauth/authorize", params=params)).text
    assert "the exact value and why" in page and "a range such as 50\u201360" in page
    body = await _tokens(
        member_client,
        reg,
        scope="score:reach score:reach:history profile",
        scopes=["score:reach:band", "score:reach:history", "profile"],
    )
    assert body["scope"] == "score:reach:band profile"
    grant = await Grant.get()
    assert grant.scopes == ["score:reach:band", "profile"]
    seen = await introspect(member_client, reg, body["access_token"])
    assert seen["scope"] == "score:reach:band profile"


async def test_the_member_may_share_nothing_of_a_score(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    body = await _tokens(member_client, reg, scope="profile score:reach", scopes=["profile"])
    assert body["scope"] == "profile"


async def test_a_form_cannot_raise_a_level_above_what_the_app_asked(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    params = authorize_params(reg, pkce()[1], scope="score:reach:band")
    response = await consent(member_client, params, scopes=["score:reach"])
    assert query_of(response.headers["location"])["error"] == "access_denied"
    assert await Grant.all().count() == 0


async def test_two_levels_of_one_score_or_a_threshold_out_of_range_are_invalid_scope(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    for scope in ("score:reach score:reach:band", "score:reach:atleast:150", "score:reach:x"):
        params = authorize_params(reg, pkce()[1], scope=scope)
        response = await member_client.get("/oauth/authorize", params=params)
        assert query_of(response.headers["location"])["error"] == "invalid_scope", scope


async def test_a_refresh_may_lower_a_level_but_never_raise_it(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    body = await _tokens(member_client, reg, scope="score:reach score:reach:history")
    lowered = await _refresh(member_client, reg, body["refresh_token"], "score:reach:band")
    assert lowered.status_code == 200, lowered.text
    assert lowered.json()["scope"] == "score:reach:band"
    seen = await introspect(member_client, reg, lowered.json()["access_token"])
    assert seen["scope"] == "score:reach:band"
    for higher in ("score:reach", "score:reach:band score:reach:history"):
        raised = await _refresh(member_client, reg, lowered.json()["refresh_token"], higher)
        assert raised.status_code == 400 and raised.json()["error"] == "invalid_scope", higher
    body = await _tokens(member_client, reg, scope="score:reach:atleast:50")
    for other in ("score:reach:band", "score:reach:atleast:40"):
        moved = await _refresh(member_client, reg, body["refresh_token"], other)
        assert moved.json()["error"] == "invalid_scope", other
