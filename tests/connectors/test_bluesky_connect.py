"""A member connects a (fake) Bluesky account end to end: catalogue, handle + app password,
first sync through the engine, sealed storage, refreshed sessions, reconnect, disconnect."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from coop.config import Settings
from coop.connectors.models import Connection, Record
from coop.jobs import sync as sync_jobs
from tests.fakes.bluesky import HANDLE, PASSWORD, FakeBluesky, running_bluesky
from tests.fakes.upstream import database_contains
from tests.web.journeys import log_in_new_member, post_form


@pytest.fixture
def pds() -> Iterator[FakeBluesky]:
    with running_bluesky() as fake:
        yield fake


@pytest.fixture
def settings(settings: Settings, pds: FakeBluesky) -> Settings:
    return dataclasses.replace(settings, bluesky_resolver_url=pds.url, bluesky_plc_url=pds.url)


def jobs_of(app: Any) -> sync_jobs.Jobs:
    return sync_jobs.get_jobs(app.state.runtime)


async def connect(
    client: httpx.AsyncClient, app: Any, password: str = PASSWORD, handle: str = HANDLE
) -> httpx.Response:
    response = await post_form(
        client,
        "/connectors/bluesky/login",
        {"account": handle, "app_password": password},
        page="/connectors",
    )
    await jobs_of(app).queue.drain()
    return response


async def test_the_catalogue_shows_what_bluesky_reads_and_asks_for_an_app_password(
    client: httpx.AsyncClient, pds: FakeBluesky
) -> None:
    await log_in_new_member(client)

    page = (await client.get("/connectors")).text

    assert '<label for="bluesky-handle">Bluesky handle</label>' in page
    assert '<label for="bluesky-app-password">App password</label>' in page
    assert "who liked, reposted, quoted or replied to your posts (only the counts)" in page
    assert "Never enter your account password" in page
    assert pds.log.all() == []  # nothing is fetched before the member connects


async def test_connecting_bluesky_syncs_posts_and_seals_the_session(
    client: httpx.AsyncClient, app: Any, pds: FakeBluesky
) -> None:
    pds.add_posts(120, text="unique-skeet-text-777")
    await log_in_new_member(client)

    done = await connect(client, app)

    assert done.status_code == 303, done.text
    assert done.headers["location"].startswith("/connections/")
    [connection] = await Connection.all()
    assert (connection.connector, connection.status) == ("bluesky", "ok")
    assert await Record.filter(kind="post").count() == 120
    assert await Record.filter(kind="audience").count() == 1
    [session] = pds.sessions.values()
    for secret in (PASSWORD, session.refresh, *pds.sessions):
        assert await database_contains(secret) == []
    assert await database_contains("unique-skeet-text-777") == []
    page = (await client.get(done.headers["location"])).text
    assert HANDLE in page and "Sync now" in page


@pytest.mark.parametrize(
    ("handle", "password", "code"),
    [
        (HANDLE, "wrong-wrong-wrong-wrong", "app_password_refused"),
        ("nobody.test", PASSWORD, "handle_not_resolved"),
        ("not a handle", PASSWORD, "invalid_handle"),
    ],
)
async def test_a_refused_login_connects_nothing_and_says_why(
    client: httpx.AsyncClient, app: Any, pds: FakeBluesky, handle: str, password: str, code: str
) -> None:
    await log_in_new_member(client)

    response = await connect(client, app, password=password, handle=handle)

    assert response.status_code == 400
    assert f"({code})" in response.text
    assert password not in response.text
    assert await Connection.all().count() == 0


async def test_an_expired_session_is_renewed_by_the_engine_and_stored_sealed(
    client: httpx.AsyncClient, app: Any, pds: FakeBluesky
) -> None:
    await log_in_new_member(client)
    await connect(client, app)
    pds.expire_access_tokens()
    pds.add_posts(2)

    [connection] = await Connection.all()
    outcome = await jobs_of(app).engine.run(connection.id)

    assert outcome.outcome == "ok"
    assert await Record.filter(kind="post").count() == 2
    [live] = pds.live_refresh_tokens()
    assert await database_contains(live) == []
    pds.log.clear()
    await jobs_of(app).engine.run(connection.id)  # the saved pair is the one used next
    assert pds.log.to("/xrpc/com.atproto.server.refreshSession") == []


async def test_a_dead_session_asks_for_reconnecting_and_reconnecting_renews_it(
    client: httpx.AsyncClient, app: Any, pds: FakeBluesky
) -> None:
    await log_in_new_member(client)
    first = await connect(client, app)
    pds.expire_refresh_tokens()
    [connection] = await Connection.all()
    await jobs_of(app).engine.run(connection.id)
    await connection.refresh_from_db()
    assert connection.status == "needs_reauthorization"
    assert "Reconnect" in (await client.get(first.headers["location"])).text

    second = await connect(client, app)

    assert second.headers["location"] == first.headers["location"]
    [connection] = await Connection.all()
    assert (connection.generation, connection.status) == (2, "ok")


async def test_disconnecting_deletes_the_records_and_ends_the_session_upstream(
    client: httpx.AsyncClient, app: Any, pds: FakeBluesky
) -> None:
    pds.add_posts(3)
    await log_in_new_member(client)
    done = await connect(client, app)
    [refresh] = pds.live_refresh_tokens()
    path = done.headers["location"] + "/disconnect"

    response = await post_form(client, path, page=path)

    assert response.status_code == 303
    assert await Record.all().count() == 0
    [delete] = pds.log.to("/xrpc/com.atproto.server.deleteSession", "POST")
    assert delete.headers["authorization"] == f"Bearer {refresh}"
    assert pds.live_refresh_tokens() == set()


@pytest.mark.parametrize(
    ("status", "code"),
    [(429, "upstream_throttled"), (502, "upstream_login_failed")],
)
async def test_a_pds_that_throttles_or_fails_the_login_connects_nothing(
    client: httpx.AsyncClient, app: Any, pds: FakeBluesky, status: int, code: str
) -> None:
    await log_in_new_member(client)
    pds.fail_next(
        status,
        path="/xrpc/com.atproto.server.createSession",
        headers={"Retry-After": "30"} if status == 429 else {},
    )

    response = await connect(client, app)

    assert response.status_code == status
    assert f"({code})" in response.text
    assert await Connection.all().count() == 0
