"""A member connects a (fake) Mastodon account end to end: catalogue, OAuth, first sync,
sealed storage, reconnect, health on revoked tokens, disconnect with upstream revocation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from coop.connectors.models import Connection, Record
from coop.connectors.oauth_models import MastodonAppRegistration
from coop.jobs import sync as sync_jobs
from tests.fakes.mastodon import FakeMastodon, running_mastodon
from tests.fakes.upstream import approve_upstream, database_contains, upstream_url_of
from tests.web.journeys import log_in_new_member, post_form


@pytest.fixture
def instance() -> Iterator[FakeMastodon]:
    with running_mastodon() as fake:
        yield fake


def jobs_of(app: Any) -> sync_jobs.Jobs:
    return sync_jobs.get_jobs(app.state.runtime)


async def connect(client: httpx.AsyncClient, app: Any, fake: FakeMastodon) -> httpx.Response:
    response = await post_form(
        client, "/connectors/mastodon/connect", {"instance": fake.url}, page="/connectors"
    )
    answer = await approve_upstream(upstream_url_of(response))
    done = await client.get(answer)
    await jobs_of(app).queue.drain()
    return done


async def test_the_catalogue_shows_what_mastodon_reads_before_connecting(
    client: httpx.AsyncClient, instance: FakeMastodon
) -> None:
    await log_in_new_member(client)

    page = (await client.get("/connectors")).text

    assert '<label for="mastodon-instance">Mastodon server</label>' in page
    assert "who follows you or whom you follow (only the number of followers)" in page
    assert "your direct messages" in page
    assert instance.log.all() == []  # nothing is fetched before the member connects


async def test_connecting_mastodon_syncs_statuses_and_stores_everything_sealed(
    client: httpx.AsyncClient, app: Any, instance: FakeMastodon
) -> None:
    instance.add_statuses(45, content="<p>unique-status-text-4242</p>")
    await log_in_new_member(client)

    done = await connect(client, app, instance)

    assert done.status_code == 303
    assert done.headers["location"].startswith("/connections/")
    [token_call] = instance.log.to("/oauth/token", "POST")
    assert token_call.form["grant_type"] == "authorization_code"
    assert len(token_call.form["code_verifier"]) >= 43
    [connection] = await Connection.all()
    assert connection.connector == "mastodon"
    assert connection.status == "ok"
    assert await Record.filter(kind="post").count() == 45
    assert await Record.filter(kind="audience").count() == 1
    [token] = instance.live_tokens()
    [app_row] = await MastodonAppRegistration.all()
    [registered] = instance.apps.values()
    for secret in (token, registered.client_secret, registered.client_id):
        assert await database_contains(secret) == []
    assert await database_contains("unique-status-text-4242") == []
    page = (await client.get(done.headers["location"])).text
    assert "Mastodon connected. The first sync has started." in page
    assert app_row.id is not None


async def test_connecting_the_same_instance_again_renews_the_connection(
    client: httpx.AsyncClient, app: Any, instance: FakeMastodon
) -> None:
    await log_in_new_member(client)
    first = await connect(client, app, instance)
    instance.revoke_all()

    second = await connect(client, app, instance)

    assert first.headers["location"] == second.headers["location"]
    [connection] = await Connection.all()
    assert connection.generation == 2
    assert connection.status == "ok"
    assert len(instance.log.to("/api/v1/apps")) == 1


async def test_a_revoked_token_shows_needs_reauthorization_with_a_reconnect_button(
    client: httpx.AsyncClient, app: Any, instance: FakeMastodon
) -> None:
    await log_in_new_member(client)
    done = await connect(client, app, instance)
    instance.revoke_all()

    sync = await post_form(
        client, done.headers["location"] + "/sync", page=done.headers["location"]
    )
    assert sync.status_code == 303
    await jobs_of(app).queue.drain()

    [connection] = await Connection.all()
    assert connection.status == "needs_reauthorization"
    page = (await client.get(done.headers["location"])).text
    assert "Reconnect" in page


async def test_a_rate_limited_instance_shows_throttled_until_its_reset_time(
    client: httpx.AsyncClient, app: Any, instance: FakeMastodon
) -> None:
    from datetime import timedelta

    from coop.types import utcnow

    instance.add_statuses(3)
    await log_in_new_member(client)
    await connect(client, app, instance)
    instance.throttle_next(reset_in=900)

    [connection] = await Connection.all()
    await jobs_of(app).engine.run(connection.id)

    await connection.refresh_from_db()
    assert connection.status == "throttled"
    assert connection.next_sync_at is not None
    wait = connection.next_sync_at - utcnow()
    assert timedelta(seconds=880) <= wait <= timedelta(seconds=901)
    assert await Record.filter(kind="post").count() == 3


async def test_disconnecting_deletes_the_records_and_revokes_the_token_upstream(
    client: httpx.AsyncClient, app: Any, instance: FakeMastodon
) -> None:
    instance.add_statuses(3)
    await log_in_new_member(client)
    done = await connect(client, app, instance)
    [token] = instance.live_tokens()
    path = done.headers["location"] + "/disconnect"

    response = await post_form(client, path, page=path)

    assert response.status_code == 303
    assert await Record.all().count() == 0
    [revoke] = instance.log.to("/oauth/revoke", "POST")
    assert revoke.form["token"] == token
    assert instance.live_tokens() == []


async def test_disconnect_succeeds_when_the_instance_is_down(
    client: httpx.AsyncClient, app: Any, instance: FakeMastodon
) -> None:
    await log_in_new_member(client)
    done = await connect(client, app, instance)
    instance.fail_next(503, path="/oauth/revoke")
    path = done.headers["location"] + "/disconnect"

    response = await post_form(client, path, page=path)

    assert response.status_code == 303
    assert await Connection.all().count() == 0


async def test_the_redirect_uri_is_the_one_registered_for_this_instance(
    client: httpx.AsyncClient, instance: FakeMastodon
) -> None:
    await log_in_new_member(client)
    response = await post_form(
        client, "/connectors/mastodon/connect", {"instance": instance.url}, page="/connectors"
    )
    sent = parse_qs(httpx.URL(upstream_url_of(response)).query.decode())["redirect_uri"][0]
    [registered] = instance.apps.values()
    [row] = await MastodonAppRegistration.all()
    assert registered.redirect_uris == [sent]
    assert sent.endswith(f"/connectors/oauth/callback/mastodon/{row.id}")
