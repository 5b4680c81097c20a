"""The authorization endpoint: redirect URI checks, PKCE at the authorize step, the consent
page and the member's decision (OA-01, OA-03, OA-15, OA-16, OA-17)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from coop.consent.models import AuthorizationCode, Grant
from coop.vault import Vault
from tests.oauth.support import (
    ISSUER,
    REDIRECT,
    authorize_params,
    consent,
    csrf_from,
    pkce,
    query_of,
    register,
)

pytestmark = pytest.mark.usefixtures("db")


def assert_no_redirect(response: httpx.Response) -> None:
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "location" not in response.headers


@pytest.mark.parametrize(
    "redirect_uri",
    [
        REDIRECT + "/",
        "https://APP.example/callback",
        "https://app.example/callback?x=1",
        "https://app.example:8443/callback",
        "http://app.example/callback",
        REDIRECT + "#frag",
        "https://evil.example/callback",
    ],
)
async def test_redirect_uri_differing_by_any_byte_gets_an_error_page_without_location(
    member_client: httpx.AsyncClient, vault: Vault, redirect_uri: str
) -> None:
    reg = await register(vault)
    params = authorize_params(reg, pkce()[1], redirect_uri=redirect_uri)
    assert_no_redirect(await member_client.get("/oauth/authorize", params=params))


async def test_registered_query_string_must_match_exactly(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault, redirect_uris=["https://app.example/cb?x=1"])
    for uri in ("https://app.example/cb", "https://app.example/cb?x=1&y=2"):
        params = authorize_params(reg, pkce()[1], redirect_uri=uri)
        assert_no_redirect(await member_client.get("/oauth/authorize", params=params))


async def test_unknown_client_gets_an_error_page_without_location(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    params = authorize_params(reg, pkce()[1], client_id="coop_nobody")
    assert_no_redirect(await member_client.get("/oauth/authorize", params=params))


async def test_client_with_two_uris_must_send_redirect_uri(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault, redirect_uris=[REDIRECT, "https://app.example/other"])
    params = authorize_params(reg, pkce()[1])
    del params["redirect_uri"]
    assert_no_redirect(await member_client.get("/oauth/authorize", params=params))


async def test_client_with_one_uri_may_omit_redirect_uri(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    params = authorize_params(reg, pkce()[1])
    del params["redirect_uri"]
    assert (await member_client.get("/oauth/authorize", params=params)).status_code == 200


async def test_loopback_redirect_may_change_only_its_port(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault, redirect_uris=["http://127.0.0.1:5000/cb"])
    ok = authorize_params(reg, pkce()[1], redirect_uri="http://127.0.0.1:61234/cb")
    assert (await member_client.get("/oauth/authorize", params=ok)).status_code == 200
    bad = authorize_params(reg, pkce()[1], redirect_uri="http://127.0.0.1:61234/other")
    assert_no_redirect(await member_client.get("/oauth/authorize", params=bad))


@pytest.mark.parametrize(
    "change",
    [
        {"code_challenge": None, "code_challenge_method": None},
        {"code_challenge_method": None},
        {"code_challenge_method": "plain"},
        {"code_challenge": "too-short"},
        {"code_challenge": "x" * 129},
        {"code_challenge": "a" * 42 + "!"},
    ],
)
async def test_missing_plain_or_malformed_pkce_is_refused_at_the_authorize_step(
    member_client: httpx.AsyncClient, vault: Vault, change: dict[str, str | None]
) -> None:
    reg = await register(vault)
    params = authorize_params(reg, pkce()[1])
    for key, value in change.items():
        if value is None:
            params.pop(key)
        else:
            params[key] = value
    response = await member_client.get("/oauth/authorize", params=params)
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?")
    query = query_of(location)
    assert query["error"] == "invalid_request"
    assert query["state"] == params["state"]
    assert query["iss"] == ISSUER
    assert "code" not in query
    assert await AuthorizationCode.all().count() == 0


async def test_response_type_token_is_unsupported(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    params = authorize_params(reg, pkce()[1], response_type="token")
    response = await member_client.get("/oauth/authorize", params=params)
    assert response.status_code == 302
    query = query_of(response.headers["location"])
    assert query["error"] == "unsupported_response_type"
    assert (query["state"], query["iss"]) == (params["state"], ISSUER)


@pytest.mark.parametrize("scope", ["", "email", "score:", "score:Reach", "score:reach:x", "a b"])
async def test_unknown_scope_redirects_with_invalid_scope(
    member_client: httpx.AsyncClient, vault: Vault, scope: str
) -> None:
    reg = await register(vault)
    params = authorize_params(reg, pkce()[1], scope=scope)
    response = await member_client.get("/oauth/authorize", params=params)
    assert response.status_code == 302
    query = query_of(response.headers["location"])
    assert query["error"] == "invalid_scope"
    assert (query["state"], query["iss"]) == (params["state"], ISSUER)


async def test_state_is_echoed_exactly_with_iss_on_success(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    state = "a b+c/d=é&x"
    params = authorize_params(reg, pkce()[1], state=state)
    response = await consent(member_client, params)
    assert response.status_code == 303
    query = query_of(response.headers["location"])
    assert query["state"] == state
    assert query["iss"] == ISSUER
    assert query["code"].startswith("coop_ac_")


async def test_denial_redirects_with_access_denied_state_and_iss(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    params = authorize_params(reg, pkce()[1])
    response = await consent(member_client, params, decision="deny")
    assert response.status_code == 303
    query = query_of(response.headers["location"])
    assert query["error"] == "access_denied"
    assert (query["state"], query["iss"]) == (params["state"], ISSUER)
    assert "code" not in query
    assert await Grant.all().count() == 0


async def test_unchecking_every_scope_is_a_denial(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    params = authorize_params(reg, pkce()[1])
    response = await consent(member_client, params, scopes=[])
    assert query_of(response.headers["location"])["error"] == "access_denied"


async def test_member_may_grant_fewer_scopes_than_asked(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    params = authorize_params(reg, pkce()[1], scope="profile score:reach score:reach:history")
    response = await consent(member_client, params, scopes=["score:reach", "score:other"])
    assert response.status_code == 303
    grant = await Grant.get()
    assert grant.scopes == ["score:reach"]


async def test_visitor_is_sent_to_login_and_back(client: httpx.AsyncClient, vault: Vault) -> None:
    reg = await register(vault)
    params = authorize_params(reg, pkce()[1])
    response = await client.get("/oauth/authorize", params=params)
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/login?next=")
    assert "%2Foauth%2Fauthorize" in location or "/oauth/authorize" in location


async def test_consent_page_shows_identity_scopes_in_plain_words_and_lifetimes(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault, name="Reach Ranker", homepage="https://ranker.example")
    params = authorize_params(reg, pkce()[1], scope="profile score:reach score:reach:history")
    page = await member_client.get("/oauth/authorize", params=params)
    text = page.text
    assert "Reach Ranker" in text and "https://ranker.example" in text
    assert "app.example" in text
    assert "the operator of this coop" in text
    assert "Your Reach score" in text and "the exact value and why" in text
    assert "the history of your Reach score" in text
    assert "your handle" in text
    for label in ("1 day", "30 days", "1 year", "Until revoked"):
        assert label in text
    assert ">Allow</button>" in text and ">Deny</button>" in text


async def test_consent_page_cannot_be_framed_and_lets_the_form_reach_the_app(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    page = await member_client.get("/oauth/authorize", params=authorize_params(reg, pkce()[1]))
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "form-action 'self' https://app.example" in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert "access-control-allow-origin" not in page.headers


async def test_app_supplied_strings_are_escaped(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault, name="<script>alert(1)</script>")
    page = await member_client.get("/oauth/authorize", params=authorize_params(reg, pkce()[1]))
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


async def test_consent_post_without_csrf_token_is_refused(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    params = authorize_params(reg, pkce()[1])
    form = {**params, "decision": "allow", "grant_scope": ["profile"], "lifetime": "30d"}
    response = await member_client.post("/oauth/authorize", data=form)
    assert response.status_code == 403
    assert "location" not in response.headers
    assert await AuthorizationCode.all().count() == 0


async def test_cross_site_consent_post_is_refused(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    params = authorize_params(reg, pkce()[1])
    page = await member_client.get("/oauth/authorize", params=params)
    form = {
        **params,
        "csrf_token": csrf_from(page.text),
        "decision": "allow",
        "grant_scope": ["profile"],
        "lifetime": "30d",
    }
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}):
        response = await member_client.post("/oauth/authorize", data=form, headers=headers)
        assert response.status_code == 403
    assert await AuthorizationCode.all().count() == 0


async def test_cors_preflight_to_authorize_gets_no_cors_headers(
    member_client: httpx.AsyncClient,
) -> None:
    response = await member_client.options(
        "/oauth/authorize",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in response.headers


async def test_consent_post_revalidates_the_request(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    """Hidden fields are not trusted: a tampered redirect_uri gets the error page."""
    reg = await register(vault)
    params = authorize_params(reg, pkce()[1])
    page = await member_client.get("/oauth/authorize", params=params)
    form = {
        **params,
        "redirect_uri": "https://evil.example/cb",
        "csrf_token": csrf_from(page.text),
        "decision": "allow",
        "grant_scope": ["profile"],
        "lifetime": "30d",
    }
    response = await member_client.post(
        "/oauth/authorize", data=form, headers={"Sec-Fetch-Site": "same-origin"}
    )
    assert_no_redirect(response)
    assert await AuthorizationCode.all().count() == 0


async def test_installed_scorer_registry_refuses_unknown_scorers(
    app: Any, member_client: httpx.AsyncClient, vault: Vault
) -> None:
    async def installed() -> list[str]:
        return ["reach"]

    app.state.runtime.known_scorers = installed
    reg = await register(vault)
    ok = authorize_params(reg, pkce()[1], scope="score:reach:history")
    assert (await member_client.get("/oauth/authorize", params=ok)).status_code == 200
    bad = authorize_params(reg, pkce()[1], scope="score:klout")
    response = await member_client.get("/oauth/authorize", params=bad)
    assert query_of(response.headers["location"])["error"] == "invalid_scope"
    metadata = (await member_client.get("/.well-known/oauth-authorization-server")).json()
    assert metadata["scopes_supported"] == [
        "profile",
        "score:reach",
        "score:reach:band",
        "score:reach:history",
    ]


async def test_the_composed_app_knows_the_installed_scorer_plugins(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    """Without any injection, coop.app wires the plugin metadata in: the reference scorers
    (installed in the test environment) are grantable, an uninstalled one is not."""
    reg = await register(vault)
    ok = authorize_params(reg, pkce()[1], scope="score:reach score:cadence:history")
    assert (await member_client.get("/oauth/authorize", params=ok)).status_code == 200
    bad = authorize_params(reg, pkce()[1], scope="score:klout")
    response = await member_client.get("/oauth/authorize", params=bad)
    assert query_of(response.headers["location"])["error"] == "invalid_scope"
