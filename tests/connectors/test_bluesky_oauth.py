"""A member signs in with Bluesky (atproto OAuth) against the fake PDS and entryway: PAR, PKCE,
DPoP with server nonces, the callback's checks, syncing with DPoP-bound tokens, refreshing,
revoking; coop's client metadata and keys; the SSRF guard on every URL discovery turns up."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from coop.config import Settings
from coop.connectors.models import Connection, Record
from coop.connectors.oauth_models import OAuthFlow
from coop.jobs import sync as sync_jobs
from tests.fakes.bluesky import HANDLE, FakeBluesky, running_bluesky
from tests.fakes.upstream import database_contains
from tests.web.journeys import log_in_new_member, post_form

HTTPS_ISSUER = "https://127.0.0.1:8443"


@pytest.fixture
def pds() -> Iterator[FakeBluesky]:
    with running_bluesky() as fake:
        yield fake


@pytest.fixture
def settings(settings: Settings, pds: FakeBluesky) -> Settings:
    return dataclasses.replace(settings, bluesky_resolver_url=pds.url, bluesky_plc_url=pds.url)


def jobs_of(app: Any) -> sync_jobs.Jobs:
    return sync_jobs.get_jobs(app.state.runtime)


def assert_error_page(response: httpx.Response, code: str) -> None:
    assert response.status_code == 400, response.text
    assert f"<code>{code}</code>" in response.text


async def start(client: httpx.AsyncClient, handle: str = HANDLE) -> httpx.Response:
    return await post_form(
        client, "/connectors/bluesky/connect", {"account": handle}, page="/connectors"
    )


async def at_the_server(started: httpx.Response) -> httpx.URL:
    """Follow coop's hand-off to the authorization server as the browser would; returns where
    the server sends the browser back to."""
    assert started.status_code == 200, started.text
    url = started.headers["refresh"].split("url=", 1)[1]
    async with httpx.AsyncClient(trust_env=False) as browser:
        answer = await browser.get(url)
    assert answer.status_code == 302, answer.text
    return httpx.URL(answer.headers["location"])


async def come_back(client: httpx.AsyncClient, app: Any, back: httpx.URL) -> httpx.Response:
    response = await client.get(back.raw_path.decode())
    await jobs_of(app).queue.drain()
    return response


async def sign_in(client: httpx.AsyncClient, app: Any, handle: str = HANDLE) -> httpx.Response:
    return await come_back(client, app, await at_the_server(await start(client, handle)))


async def test_signing_in_with_bluesky_connects_syncs_and_seals_the_dpop_session(
    client: httpx.AsyncClient, app: Any, pds: FakeBluesky
) -> None:
    pds.add_posts(120, text="unique-oauth-skeet-555")
    await log_in_new_member(client)

    done = await sign_in(client, app)

    assert done.status_code == 303, done.text
    assert done.headers["location"].startswith("/connections/")
    [connection] = await Connection.all()
    assert (connection.connector, connection.status) == ("bluesky", "ok")
    assert await Record.filter(kind="post").count() == 120
    par = pds.auth.log.to("/oauth/par")[-1]
    assert par.form["client_id"].startswith("http://localhost?")  # the loopback dev client
    assert par.form["code_challenge_method"] == "S256"
    assert par.form["login_hint"] == HANDLE
    assert par.form["scope"] == "atproto transition:generic"
    [access] = pds.auth.tokens
    [refresh] = pds.auth.live_refresh_tokens()
    for secret in (access, refresh, '"d":'):
        assert await database_contains(secret) == []
    assert pds.log.to("/xrpc/com.atproto.server.createSession") == []  # no password involved
    feed_calls = pds.log.to("/xrpc/app.bsky.feed.getAuthorFeed")
    assert feed_calls and all(c.headers["authorization"] == f"DPoP {access}" for c in feed_calls)


async def test_every_server_nonce_is_obtained_by_one_retry_and_then_reused(
    client: httpx.AsyncClient, app: Any, pds: FakeBluesky
) -> None:
    pds.add_posts(3)
    await log_in_new_member(client)

    await sign_in(client, app)

    # One refusal each at the entryway (PAR) and the PDS (first XRPC call); the nonce learnt
    # at PAR carries through the flow to the token request.
    assert pds.auth.refusals == ["nonce", "nonce"]
    assert len(pds.auth.log.to("/oauth/par")) == 2
    assert len(pds.auth.log.to("/oauth/token")) == 1


async def test_a_rotated_nonce_is_retried_on_the_pds(
    client: httpx.AsyncClient, app: Any, pds: FakeBluesky
) -> None:
    await log_in_new_member(client)
    await sign_in(client, app)
    pds.auth.rotate_nonces()
    pds.auth.refusals.clear()
    pds.add_posts(2)

    [connection] = await Connection.all()
    outcome = await jobs_of(app).engine.run(connection.id)

    assert outcome.outcome == "ok"
    assert pds.auth.refusals == ["nonce"]
    assert await Record.filter(kind="post").count() == 2


async def test_the_member_refusing_at_their_server_connects_nothing(
    client: httpx.AsyncClient, app: Any, pds: FakeBluesky
) -> None:
    pds.auth.decision = "deny"
    await log_in_new_member(client)

    response = await sign_in(client, app)

    assert_error_page(response, "oauth_denied")
    assert await Connection.all().count() == 0
    assert pds.auth.log.to("/oauth/token") == []


async def test_tokens_for_another_account_are_refused_and_revoked(
    client: httpx.AsyncClient, app: Any, pds: FakeBluesky
) -> None:
    pds.auth.sub = "did:plc:zzzzzzzzzzzzzzzzzzzzzzzz"
    await log_in_new_member(client)

    response = await sign_in(client, app)

    assert_error_page(response, "oauth_wrong_account")
    assert await Connection.all().count() == 0
    assert len(pds.auth.revoked) == 1 and pds.auth.live_refresh_tokens() == set()


async def test_an_authorization_server_naming_another_issuer_is_not_used(
    client: httpx.AsyncClient, app: Any, pds: FakeBluesky
) -> None:
    pds.auth.issuer = "https://entryway.example"
    await log_in_new_member(client)

    response = await start(client)

    assert response.status_code == 400
    assert "(oauth_issuer_mismatch)" in response.text
    assert pds.auth.log.to("/oauth/par") == []
    assert await OAuthFlow.all().count() == 0


async def test_a_callback_whose_iss_names_another_server_is_refused_before_any_token_request(
    client: httpx.AsyncClient, app: Any, pds: FakeBluesky
) -> None:
    await log_in_new_member(client)
    back = await at_the_server(await start(client))
    forged = back.copy_set_param("iss", "https://evil.example")

    response = await come_back(client, app, forged)

    assert_error_page(response, "oauth_mixup")
    assert pds.auth.log.to("/oauth/token") == []


async def test_a_server_without_oauth_points_the_member_to_app_passwords(
    client: httpx.AsyncClient, app: Any, pds: FakeBluesky
) -> None:
    pds.auth.enabled = False
    await log_in_new_member(client)

    response = await start(client)

    assert response.status_code == 400
    assert "(bluesky_oauth_unsupported)" in response.text
    assert 'value="alice.test"' in response.text  # the handle stays for the app password
    assert "App password" in response.text


@pytest.mark.parametrize(
    ("field", "value"),
    [("pds_url", "https://another-pds.example"), ("authorization_server", "ftp://entryway")],
)
async def test_protected_resource_metadata_for_another_server_or_a_bad_issuer_is_not_used(
    client: httpx.AsyncClient, app: Any, pds: FakeBluesky, field: str, value: str
) -> None:
    setattr(pds.auth, field, value)
    await log_in_new_member(client)

    response = await start(client)

    assert response.status_code == 400
    assert "(bluesky_oauth_unsupported)" in response.text
    assert pds.auth.log.all() == []  # nothing was asked of any authorization server


async def test_an_expired_access_token_is_refreshed_with_dpop_and_stored_sealed(
    client: httpx.AsyncClient, app: Any, pds: FakeBluesky
) -> None:
    await log_in_new_member(client)
    await sign_in(client, app)
    [first_refresh] = pds.auth.live_refresh_tokens()
    pds.auth.expire_access_tokens()
    pds.add_posts(2)

    [connection] = await Connection.all()
    outcome = await jobs_of(app).engine.run(connection.id)

    assert outcome.outcome == "ok"
    assert await Record.filter(kind="post").count() == 2
    [refresh] = pds.auth.log.to("/oauth/token")[-1:]
    assert refresh.form["grant_type"] == "refresh_token"
    assert refresh.form["refresh_token"] == first_refresh
    [live] = pds.auth.live_refresh_tokens()
    assert live != first_refresh and await database_contains(live) == []
    pds.auth.log.clear()
    await jobs_of(app).engine.run(connection.id)  # the saved pair is the one used next
    assert pds.auth.log.to("/oauth/token") == []


async def test_a_refused_refresh_asks_the_member_to_reconnect(
    client: httpx.AsyncClient, app: Any, pds: FakeBluesky
) -> None:
    await log_in_new_member(client)
    await sign_in(client, app)
    pds.auth.expire_access_tokens()
    pds.auth.refresh_tokens.clear()

    [connection] = await Connection.all()
    await jobs_of(app).engine.run(connection.id)

    await connection.refresh_from_db()
    assert connection.status == "needs_reauthorization"


async def test_disconnecting_revokes_the_refresh_token_at_the_authorization_server(
    client: httpx.AsyncClient, app: Any, pds: FakeBluesky
) -> None:
    pds.add_posts(3)
    await log_in_new_member(client)
    done = await sign_in(client, app)
    [refresh] = pds.auth.live_refresh_tokens()
    path = done.headers["location"] + "/disconnect"

    response = await post_form(client, path, page=path)

    assert response.status_code == 303
    assert await Record.all().count() == 0
    assert pds.auth.revoked == [refresh]
    assert pds.auth.tokens == {} and pds.auth.live_refresh_tokens() == set()


async def test_signing_in_again_renews_the_same_connection(
    client: httpx.AsyncClient, app: Any, pds: FakeBluesky
) -> None:
    await log_in_new_member(client)
    first = await sign_in(client, app)

    second = await sign_in(client, app)

    assert second.headers["location"] == first.headers["location"]
    assert await Connection.all().count() == 1


@pytest.mark.parametrize("where", ["authorization_server", "pds_endpoint"])
async def test_the_ssrf_guard_judges_every_url_discovery_turns_up(
    client: httpx.AsyncClient, app: Any, pds: FakeBluesky, where: str
) -> None:
    if where == "pds_endpoint":
        pds.pds_endpoint = "https://169.254.169.254"
    else:
        pds.auth.authorization_server = "https://169.254.169.254"
    await log_in_new_member(client)

    response = await start(client)

    assert response.status_code == 400, response.text
    assert "(url_not_allowed)" in response.text
    assert pds.auth.log.to("/oauth/par") == []


# -- coop as a confidential client (served over https) -----------------------------------------


@pytest.fixture
def https_settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, issuer=HTTPS_ISSUER)


@pytest.fixture
async def https_app(https_settings: Settings, db: str) -> AsyncIterator[Any]:
    from coop.app import build_app

    application = build_app(https_settings, manage_db=False)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def https_client(https_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=https_app)
    async with httpx.AsyncClient(transport=transport, base_url=HTTPS_ISSUER) as c:
        yield c


async def test_coop_publishes_its_client_metadata_and_key_set(
    https_client: httpx.AsyncClient,
) -> None:
    metadata = (await https_client.get("/oauth/bluesky/client-metadata.json")).json()
    keys = (await https_client.get("/oauth/bluesky/jwks.json")).json()

    assert metadata["client_id"] == f"{HTTPS_ISSUER}/oauth/bluesky/client-metadata.json"
    assert metadata["redirect_uris"] == [f"{HTTPS_ISSUER}/connectors/oauth/callback/bluesky"]
    assert metadata["token_endpoint_auth_method"] == "private_key_jwt"
    assert metadata["dpop_bound_access_tokens"] is True
    assert metadata["jwks_uri"] == f"{HTTPS_ISSUER}/oauth/bluesky/jwks.json"
    [key] = keys["keys"]
    assert (key["kty"], key["crv"], key["alg"]) == ("EC", "P-256", "ES256")
    assert "d" not in key


async def test_the_loopback_cooperative_serves_no_client_metadata(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/oauth/bluesky/client-metadata.json")

    assert response.status_code == 404


async def test_a_confidential_client_signs_in_with_private_key_jwt(
    https_client: httpx.AsyncClient, https_app: Any, pds: FakeBluesky
) -> None:
    pds.add_posts(3)
    pds.auth.client_metadata = (
        await https_client.get("/oauth/bluesky/client-metadata.json")
    ).json()
    pds.auth.client_jwks = (await https_client.get("/oauth/bluesky/jwks.json")).json()
    await log_in_new_member(https_client)

    done = await sign_in(https_client, https_app)

    assert done.status_code == 303, done.text
    assert await Record.filter(kind="post").count() == 3
    [token] = pds.auth.log.to("/oauth/token")
    assert token.form["client_id"] == pds.auth.client_metadata["client_id"]
    assert token.form["client_assertion_type"].endswith("jwt-bearer")
    # A refresh authenticates the same way.
    pds.auth.expire_access_tokens()
    [connection] = await Connection.all()
    assert (await jobs_of(https_app).engine.run(connection.id)).outcome == "ok"
    assert pds.auth.log.to("/oauth/token")[-1].form["grant_type"] == "refresh_token"


async def test_an_assertion_signed_by_another_key_is_refused(
    https_client: httpx.AsyncClient, https_app: Any, pds: FakeBluesky
) -> None:
    from coop.vault.jose import EcKey

    pds.auth.client_metadata = (
        await https_client.get("/oauth/bluesky/client-metadata.json")
    ).json()
    pds.auth.client_jwks = {"keys": [EcKey.generate().public_jwk()]}
    await log_in_new_member(https_client)

    response = await start(https_client)

    assert response.status_code == 400
    assert "(bluesky_oauth_unsupported)" in response.text
    assert "bad client assertion" in pds.auth.refusals
