"""The token endpoint: PKCE verification, single-use codes, client binding, client
authentication and headers (OA-04, OA-06, OA-07, OA-08, OA-09, OA-15)."""

from __future__ import annotations

import asyncio
import base64

import httpx
import pytest

from coop.consent.models import OAuthToken
from coop.types import clock
from coop.vault import Vault
from tests.oauth.support import (
    REDIRECT,
    authorize,
    introspect,
    redeem,
    register,
    token_request,
)

pytestmark = pytest.mark.usefixtures("db")


def code_body(flow_code: str, verifier: str | None, redirect_uri: str = REDIRECT) -> dict[str, str]:
    body = {"grant_type": "authorization_code", "code": flow_code, "redirect_uri": redirect_uri}
    if verifier is not None:
        body["code_verifier"] = verifier
    return body


def assert_oauth_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"] == code
    assert response.headers["cache-control"] == "no-store"


async def test_code_exchange_returns_opaque_bearer_tokens_for_one_hour(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    flow = await authorize(member_client, reg)
    response = await redeem(member_client, reg, flow)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "profile score:reach"
    assert body["access_token"].startswith("coop_at_") and len(body["access_token"]) >= 43 + 8
    assert body["refresh_token"].startswith("coop_rt_")


async def test_wrong_code_verifier_is_invalid_grant(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    flow = await authorize(member_client, reg)
    other = "x" * 43
    response = await token_request(member_client, reg, code_body(flow.code, other))
    assert_oauth_error(response, 400, "invalid_grant")


async def test_missing_code_verifier_is_invalid_grant(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    """Pinned: a missing verifier is `invalid_grant` like a wrong one (OIDF FAPI's choice)."""
    reg = await register(vault)
    flow = await authorize(member_client, reg)
    response = await token_request(member_client, reg, code_body(flow.code, None))
    assert_oauth_error(response, 400, "invalid_grant")
    assert (await redeem(member_client, reg, flow)).status_code == 200


async def test_reused_code_revokes_its_tokens(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    flow = await authorize(member_client, reg)
    first = (await redeem(member_client, reg, flow)).json()
    for wait in (1, 30):
        clock.advance(wait)
        again = await redeem(member_client, reg, flow)
        assert_oauth_error(again, 400, "invalid_grant")
    assert await introspect(member_client, reg, first["access_token"]) == {"active": False}
    assert await introspect(member_client, reg, first["refresh_token"]) == {"active": False}


@pytest.mark.parametrize("concurrency", [10, 20])
async def test_concurrent_redemptions_of_one_code_have_exactly_one_winner(
    member_client: httpx.AsyncClient, vault: Vault, concurrency: int
) -> None:
    reg = await register(vault)
    flow = await authorize(member_client, reg)
    barrier = asyncio.Barrier(concurrency)

    async def attempt() -> httpx.Response:
        await barrier.wait()
        return await redeem(member_client, reg, flow)

    responses = await asyncio.gather(*(attempt() for _ in range(concurrency)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [400] * (concurrency - 1)
    for response in responses:
        if response.status_code == 400:
            assert response.json()["error"] == "invalid_grant"
    assert await OAuthToken.all().count() == 1
    # Losing the race is a reuse of the code: what the winner got is revoked too (RFC 6749
    # §4.1.2), and that revocation must survive the loser's rolled-back transaction.
    assert await OAuthToken.filter(revoked_at__isnull=True).count() == 0


async def test_expired_code_is_invalid_grant(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    flow = await authorize(member_client, reg)
    clock.advance(61)
    assert_oauth_error(await redeem(member_client, reg, flow), 400, "invalid_grant")


async def test_code_is_bound_to_the_client_it_was_issued_to(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg_a = await register(vault)
    reg_b = await register(vault, name="Other")
    flow = await authorize(member_client, reg_a)
    response = await redeem(member_client, reg_b, flow)
    assert_oauth_error(response, 400, "invalid_grant")
    assert (await redeem(member_client, reg_a, flow)).status_code == 200


async def test_code_is_bound_to_its_redirect_uri(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault, redirect_uris=[REDIRECT, "https://app.example/other"])
    flow = await authorize(member_client, reg)
    body = code_body(flow.code, flow.verifier, "https://app.example/other")
    assert_oauth_error(await token_request(member_client, reg, body), 400, "invalid_grant")
    body = code_body(flow.code, flow.verifier)
    del body["redirect_uri"]
    assert_oauth_error(await token_request(member_client, reg, body), 400, "invalid_grant")


@pytest.mark.parametrize("case", ["unknown client", "wrong secret", "no credentials"])
async def test_failed_client_authentication_is_401_with_www_authenticate(
    member_client: httpx.AsyncClient, vault: Vault, case: str
) -> None:
    reg = await register(vault)
    flow = await authorize(member_client, reg)
    auth: httpx.BasicAuth | None = {
        "unknown client": httpx.BasicAuth("coop_nobody", "secret"),
        "wrong secret": httpx.BasicAuth(reg.app.client_id, "wrong"),
        "no credentials": None,
    }[case]
    body = code_body(flow.code, flow.verifier)
    if auth is None:
        response = await member_client.post("/oauth/token", data=body)
    else:
        response = await member_client.post("/oauth/token", data=body, auth=auth)
    assert_oauth_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_client_secret_post_is_accepted(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    flow = await authorize(member_client, reg)
    assert reg.client_secret
    body = {
        **code_body(flow.code, flow.verifier),
        "client_id": reg.app.client_id,
        "client_secret": reg.client_secret,
    }
    response = await member_client.post("/oauth/token", data=body)
    assert response.status_code == 200


async def test_public_client_redeems_with_pkce_and_no_secret(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault, public=True)
    flow = await authorize(member_client, reg)
    assert (await redeem(member_client, reg, flow)).status_code == 200


async def test_public_client_sending_a_secret_is_refused(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault, public=True)
    flow = await authorize(member_client, reg)
    auth = httpx.BasicAuth(reg.app.client_id, "made-up")
    response = await token_request(
        member_client, reg, code_body(flow.code, flow.verifier), auth=auth
    )
    assert_oauth_error(response, 401, "invalid_client")


async def test_basic_credentials_are_form_urlencoded(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    flow = await authorize(member_client, reg)
    assert reg.client_secret
    raw = f"{reg.app.client_id}:{reg.client_secret.replace('-', '%2D')}".encode()
    header = {"Authorization": "Basic " + base64.b64encode(raw).decode()}
    response = await member_client.post(
        "/oauth/token", data=code_body(flow.code, flow.verifier), headers=header
    )
    assert response.status_code == 200


async def test_password_grant_is_unsupported(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    body = {"grant_type": "password", "username": "a", "password": "b"}
    assert_oauth_error(await token_request(member_client, reg, body), 400, "unsupported_grant_type")


@pytest.mark.parametrize(
    "body",
    [{}, {"grant_type": "authorization_code"}, {"grant_type": "refresh_token"}],
)
async def test_missing_parameters_are_invalid_request(
    member_client: httpx.AsyncClient, vault: Vault, body: dict[str, str]
) -> None:
    reg = await register(vault)
    assert_oauth_error(await token_request(member_client, reg, body), 400, "invalid_request")


async def test_json_body_is_invalid_request(member_client: httpx.AsyncClient, vault: Vault) -> None:
    reg = await register(vault)
    assert reg.client_secret
    response = await member_client.post(
        "/oauth/token",
        json={"grant_type": "authorization_code"},
        auth=httpx.BasicAuth(reg.app.client_id, reg.client_secret),
    )
    assert_oauth_error(response, 400, "invalid_request")


async def test_token_requests_from_other_sites_are_allowed(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    """The token endpoint authenticates clients itself; cookies play no part."""
    reg = await register(vault)
    flow = await authorize(member_client, reg)
    response = await token_request(
        member_client,
        reg,
        code_body(flow.code, flow.verifier),
        headers={"Origin": "https://app.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert response.status_code == 200


async def test_grant_revoked_before_redemption_makes_the_code_useless(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    from coop.consent import service as consent
    from coop.consent.models import Grant

    reg = await register(vault)
    flow = await authorize(member_client, reg)
    grant = await Grant.get()
    await consent.revoke_grant(member_id=grant.member_id, grant_id=grant.id)
    assert_oauth_error(await redeem(member_client, reg, flow), 400, "invalid_grant")


async def test_a_code_redeemed_after_the_member_narrowed_the_grant_yields_only_what_is_left(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    from coop.consent import grants
    from coop.consent.models import Grant

    reg = await register(vault)
    flow = await authorize(member_client, reg, scope="profile score:reach")
    grant = await Grant.get(app_id=reg.app.id)
    await grants.narrow_grant(member_id=grant.member_id, grant_id=grant.id, scopes=["profile"])
    response = await redeem(member_client, reg, flow)
    assert response.status_code == 200
    assert response.json()["scope"] == "profile"
