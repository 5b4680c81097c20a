"""RFC 8414 metadata (OA-15)."""

from __future__ import annotations

import httpx
import pytest

from coop.config import Settings
from coop.oauth.metadata import build_metadata

pytestmark = pytest.mark.usefixtures("db")


async def test_issuer_is_the_configured_one_whatever_the_host_header(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    response = await client.get(
        "/.well-known/oauth-authorization-server",
        headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["issuer"] == settings.issuer
    assert "evil" not in response.text


async def test_metadata_advertises_only_what_coop_does(client: httpx.AsyncClient) -> None:
    body = (await client.get("/.well-known/oauth-authorization-server")).json()
    issuer = body["issuer"]
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert body["response_types_supported"] == ["code"]
    assert set(body["grant_types_supported"]) <= {"authorization_code", "refresh_token"}
    assert body["authorization_response_iss_parameter_supported"] is True
    assert body["authorization_endpoint"] == f"{issuer}/oauth/authorize"
    assert body["token_endpoint"] == f"{issuer}/oauth/token"
    assert body["revocation_endpoint"] == f"{issuer}/oauth/revoke"
    assert body["introspection_endpoint"] == f"{issuer}/oauth/introspect"
    assert "profile" in body["scopes_supported"]


def test_scopes_supported_lists_the_installed_scorers() -> None:
    body = build_metadata("https://coop.example", ["reach", "cadence"])
    assert body["scopes_supported"] == [
        "profile",
        "score:cadence",
        "score:cadence:band",
        "score:cadence:history",
        "score:reach",
        "score:reach:band",
        "score:reach:history",
    ]
