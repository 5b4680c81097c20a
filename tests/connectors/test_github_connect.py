"""A member connects a (fake) GitHub account end to end: OAuth with PKCE, first sync, sealed
tokens, refresh persisted by the engine, disconnect deleting the grant upstream."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from coop.config import Settings
from coop.connectors import oauth_client
from coop.connectors.builtin.github import GitHubConnector
from coop.connectors.models import Connection, Record
from coop.connectors.outbound import Guard
from coop.connectors.registry import Registry
from coop.errors import ConnectorNotConfiguredError
from coop.jobs import sync as sync_jobs
from coop.types import clock
from tests.fakes.github import LOGIN, FakeGitHub, running_github
from tests.fakes.upstream import approve_upstream, database_contains, upstream_url_of
from tests.web.journeys import log_in_new_member, post_form

ISSUER = "http://127.0.0.1:8000"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with running_github(callback_url=f"{ISSUER}/connectors/oauth/callback/github") as fake:
        fake.add_repos(3)
        fake.add_events(4)
        yield fake


@pytest.fixture
def settings(settings: Settings, github: FakeGitHub) -> Settings:
    return dataclasses.replace(
        settings,
        github_client_id=github.client_id,
        github_client_secret=github.client_secret,
        github_base_url=github.url,
        github_api_url=github.url,
    )


def jobs_of(app: Any) -> sync_jobs.Jobs:
    return sync_jobs.get_jobs(app.state.runtime)


async def connect(client: httpx.AsyncClient, app: Any) -> httpx.Response:
    response = await post_form(client, "/connectors/github/connect", page="/connectors")
    done = await client.get(await approve_upstream(upstream_url_of(response)))
    await jobs_of(app).queue.drain()
    return done


async def test_the_catalogue_shows_what_github_reads_before_connecting(
    client: httpx.AsyncClient, github: FakeGitHub
) -> None:
    await log_in_new_member(client)

    page = (await client.get("/connectors")).text

    assert "your public repositories, with star and fork counts" in page
    assert "your private repositories" in page
    assert 'action="/connectors/github/connect"' in page
    assert github.log.all() == []


async def test_connecting_github_uses_pkce_and_syncs_repositories_events_and_followers(
    client: httpx.AsyncClient, app: Any, github: FakeGitHub
) -> None:
    await log_in_new_member(client)
    response = await post_form(client, "/connectors/github/connect", page="/connectors")
    query = parse_qs(urlsplit(upstream_url_of(response)).query)
    assert query["client_id"] == [github.client_id]
    assert query["code_challenge_method"] == ["S256"]
    assert query["redirect_uri"] == [f"{ISSUER}/connectors/oauth/callback/github"]

    done = await client.get(await approve_upstream(upstream_url_of(response)))
    await jobs_of(app).queue.drain()

    assert done.status_code == 303
    [token_call] = github.log.to("/login/oauth/access_token", "POST")
    assert token_call.headers["accept"] == "application/json"
    assert token_call.form["code_verifier"]
    [connection] = await Connection.all()
    assert (connection.connector, connection.status) == ("github", "ok")
    assert await Record.filter(kind="repository").count() == 3
    assert await Record.filter(kind="activity").count() == 4
    assert await Record.filter(kind="audience").count() == 1
    [token] = github.live_tokens()
    assert token.refresh is not None
    for secret in (token.access, token.refresh, github.client_secret):
        assert await database_contains(secret) == []


async def test_connecting_the_same_github_account_again_renews_its_connection(
    client: httpx.AsyncClient, app: Any, github: FakeGitHub
) -> None:
    await log_in_new_member(client)
    first = await connect(client, app)

    second = await connect(client, app)

    assert first.headers["location"] == second.headers["location"]
    [connection] = await Connection.all()
    assert connection.generation == 2
    page = (await client.get(second.headers["location"])).text
    assert LOGIN in page  # the connection is labelled with the account's login


async def test_an_expired_token_is_refreshed_and_the_new_pair_is_stored_sealed(
    client: httpx.AsyncClient, app: Any, github: FakeGitHub
) -> None:
    await log_in_new_member(client)
    done = await connect(client, app)
    [first] = github.live_tokens()
    clock.advance(9 * 3600)
    await client.get("/login")  # any request; the web session may have lapsed meanwhile

    await jobs_of(app).engine.run(uuid.UUID(done.headers["location"].rsplit("/", 1)[1]))

    assert len(github.log.to("/login/oauth/access_token")) == 2  # the code, then one refresh
    [second] = github.live_tokens()
    assert second.access != first.access
    [connection] = await Connection.all()
    assert connection.status == "ok"
    for secret in (second.access, second.refresh or "-", first.refresh or "-"):
        assert await database_contains(secret) == []
    # The stored pair is the new one: a second run uses it without another refresh.
    await jobs_of(app).engine.run(connection.id)
    assert len(github.log.to("/login/oauth/access_token")) == 2


async def test_a_dead_refresh_token_marks_the_connection_needs_reauthorization(
    client: httpx.AsyncClient, app: Any, github: FakeGitHub
) -> None:
    await log_in_new_member(client)
    await connect(client, app)
    for token in github.tokens:
        token.revoked = True  # GitHub forgot the whole authorization

    [connection] = await Connection.all()
    await jobs_of(app).engine.run(connection.id)

    await connection.refresh_from_db()
    assert connection.status == "needs_reauthorization"
    assert len(github.log.to("/login/oauth/access_token")) == 2  # one refresh try, no storm


async def test_disconnecting_deletes_the_grant_upstream(
    client: httpx.AsyncClient, app: Any, github: FakeGitHub
) -> None:
    await log_in_new_member(client)
    done = await connect(client, app)
    path = done.headers["location"] + "/disconnect"

    response = await post_form(client, path, page=path)

    assert response.status_code == 303
    assert await Record.all().count() == 0
    assert len(github.log.to(f"/applications/{github.client_id}/grant", "DELETE")) == 1
    assert github.live_tokens() == []


async def test_a_forged_github_callback_makes_no_token_request(
    client: httpx.AsyncClient, github: FakeGitHub
) -> None:
    await log_in_new_member(client)
    await post_form(client, "/connectors/github/connect", page="/connectors")

    response = await client.get("/connectors/oauth/callback/github?code=stolen&state=guess")

    assert response.status_code == 400
    assert "<code>oauth_state_invalid</code>" in response.text
    assert github.log.to("/login/oauth/access_token") == []


async def test_github_without_an_oauth_app_configured_cannot_start(settings: Settings) -> None:
    registry = Registry({"github": GitHubConnector()})

    with pytest.raises(ConnectorNotConfiguredError):
        await oauth_client.start(
            vault=None,  # type: ignore[arg-type]
            registry=registry,
            guard=Guard(),
            settings=settings,
            member_id=uuid.uuid4(),
            session_id=uuid.uuid4(),
            connector="github",
        )
