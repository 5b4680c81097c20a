"""The /graphql transport: bearer-only authentication (GQ-03, OA-19), methods and content
types (GQ-09), headers, body limits (GQ-08 c)."""

from __future__ import annotations

import httpx

from coop.vault import Vault
from tests.api.factories import codes, gql, make_app, make_member, personal_token, grant_token

QUERY = "{ viewer { id } }"


async def test_request_without_credentials_gets_401_with_realm_and_no_error_code(
    client: httpx.AsyncClient,
) -> None:
    response = await gql(client, None, QUERY)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="coop"'
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "data" not in response.json()
    assert response.headers["cache-control"] == "no-store"


async def test_unknown_token_gets_401_invalid_token(client: httpx.AsyncClient) -> None:
    response = await gql(client, "coop_at_nope", QUERY)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="coop", error="invalid_token"'
    assert "data" not in response.json()


async def test_valid_personal_token_reads_viewer(client: httpx.AsyncClient, vault: Vault) -> None:
    member = await make_member(vault)
    token = await personal_token(member, ["profile", "member:manage"])
    response = await gql(client, token, "{ viewer { id handle } }")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"]["viewer"]["handle"].startswith("member-")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-ratelimit-limit"] == "600"


async def test_app_token_reads_viewer(client: httpx.AsyncClient, vault: Vault) -> None:
    member = await make_member(vault)
    app = await make_app(vault)
    token = await grant_token(member, app, ["score:reach"])
    response = await gql(client, token.access_token, "{ viewer { id handle } }")
    body = response.json()
    assert body["data"]["viewer"]["handle"] is None
    assert codes(body) == ["FORBIDDEN"]
    assert body["errors"][0]["extensions"]["required_scope"] == "profile"
