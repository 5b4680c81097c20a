"""The member-side OAuth client flow through the in-process app, against fake Mastodon
instances: every forged, replayed or mixed-up callback is an HTML 400 and nothing reaches a
token endpoint (checklist OA-18)."""

from __future__ import annotations

import dataclasses
import html
import re
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from coop.config import Settings
from coop.connectors.oauth_models import OAuthFlow
from coop.jobs import sync as sync_jobs
from coop.types import clock
from coop.web.templating import static_url
from tests.fakes.mastodon import FakeMastodon, running_mastodon
from tests.fakes.upstream import approve_upstream, upstream_url_of
from tests.web.journeys import log_in_new_member, post_form

CALLBACK = "/connectors/oauth/callback/mastodon/"


@pytest.fixture
def instance() -> Iterator[FakeMastodon]:
    with running_mastodon() as fake:
        yield fake


@pytest.fixture
def other_instance() -> Iterator[FakeMastodon]:
    with running_mastodon() as fake:
        yield fake


def jobs_of(app: Any) -> sync_jobs.Jobs:
    return sync_jobs.get_jobs(app.state.runtime)


async def start(client: httpx.AsyncClient, instance: str) -> httpx.Response:
    return await post_form(
        client, "/connectors/mastodon/connect", {"instance": instance}, page="/connectors"
    )


async def started(client: httpx.AsyncClient, fake: FakeMastodon) -> str:
    """Start connecting `fake`; the authorize URL coop sends the browser to."""
    return upstream_url_of(await start(client, fake.url))


def assert_refused(response: httpx.Response, code: str) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "location" not in response.headers
    assert f"<code>{code}</code>" in response.text


def token_requests(*fakes: FakeMastodon) -> int:
    return sum(len(f.log.to("/oauth/token")) for f in fakes)


async def test_starting_registers_coop_and_redirects_with_pkce_s256_and_state(
    client: httpx.AsyncClient, instance: FakeMastodon
) -> None:
    await log_in_new_member(client)

    url = await started(client, instance)

    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{instance.url}/oauth/authorize"
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query["response_type"] == "code"
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 43
    assert query["scope"] == "read:accounts read:statuses"
    assert query["redirect_uri"].startswith("http://127.0.0.1:8000" + CALLBACK)
    [registration] = instance.log.to("/api/v1/apps", "POST")
    assert registration.form["redirect_uris"] == query["redirect_uri"]
    assert registration.form["scopes"] == "read:accounts read:statuses"


async def test_starting_answers_with_a_page_that_leaves_by_itself_under_a_strict_csp(
    client: httpx.AsyncClient, instance: FakeMastodon
) -> None:
    # A 303 after the form post would be blocked by Chrome and Safari, which apply the
    # catalogue's `form-action 'self'` to redirects that follow a submission.
    await log_in_new_member(client)

    response = await start(client, instance.url)

    url = upstream_url_of(response)
    assert url.startswith(f"{instance.url}/oauth/authorize?")
    assert "form-action 'self'" in response.headers["content-security-policy"]
    # It leaves by its Refresh header, not by a script: the only script is coop's own
    # convenience file, which knows nothing of this page.
    assert re.findall(r"<script[^>]*>", response.text) == [
        f'<script src="{static_url("coop.js")}" defer>'
    ]
    assert response.headers["cache-control"] == "no-store"


async def test_a_second_start_on_the_same_instance_reuses_the_registration(
    client: httpx.AsyncClient, instance: FakeMastodon
) -> None:
    await log_in_new_member(client)
    first = await started(client, instance)
    second = await started(client, instance)

    assert len(instance.log.to("/api/v1/apps")) == 1
    redirect = [parse_qs(urlsplit(u).query)["redirect_uri"] for u in (first, second)]
    assert redirect[0] == redirect[1]


async def test_a_callback_without_state_is_refused_before_any_token_request(
    client: httpx.AsyncClient, instance: FakeMastodon
) -> None:
    await log_in_new_member(client)
    back = await approve_upstream(await started(client, instance))
    path, query = back.split("?", 1)
    code = parse_qs(query)["code"][0]

    response = await client.get(f"{path}?{urlencode({'code': code})}")

    assert_refused(response, "oauth_state_missing")
    assert token_requests(instance) == 0


async def test_a_callback_with_a_state_coop_never_issued_is_refused(
    client: httpx.AsyncClient, instance: FakeMastodon
) -> None:
    await log_in_new_member(client)
    back = await approve_upstream(await started(client, instance))
    path, query = back.split("?", 1)
    code = parse_qs(query)["code"][0]
    forged = urlencode({"code": code, "state": secrets.token_urlsafe(32)})

    response = await client.get(f"{path}?{forged}")

    assert_refused(response, "oauth_state_invalid")
    assert token_requests(instance) == 0


async def test_an_answer_delivered_to_another_instances_callback_is_a_mixup(
    client: httpx.AsyncClient, instance: FakeMastodon, other_instance: FakeMastodon
) -> None:
    await log_in_new_member(client)
    # The member once connected the attacker's instance, so coop has a callback for it.
    attacker_url = await started(client, other_instance)
    attacker_callback = parse_qs(urlsplit(attacker_url).query)["redirect_uri"][0]
    honest_back = await approve_upstream(await started(client, instance))
    _, query = honest_back.split("?", 1)

    response = await client.get(f"{urlsplit(attacker_callback).path}?{query}")

    assert_refused(response, "oauth_mixup")
    assert token_requests(instance, other_instance) == 0


async def test_an_iss_naming_another_server_is_a_mixup(
    client: httpx.AsyncClient, instance: FakeMastodon, other_instance: FakeMastodon
) -> None:
    instance.send_iss = True
    await log_in_new_member(client)
    back = await approve_upstream(await started(client, instance))
    path, query = back.split("?", 1)
    params = {k: v[0] for k, v in parse_qs(query).items()}
    assert params["iss"] == instance.url
    params["iss"] = other_instance.url

    response = await client.get(f"{path}?{urlencode(params)}")

    assert_refused(response, "oauth_mixup")
    assert token_requests(instance, other_instance) == 0


async def test_a_code_and_state_injected_from_another_session_are_refused(
    app: Any, client: httpx.AsyncClient, instance: FakeMastodon
) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=str(client.base_url)) as attacker:
        await log_in_new_member(attacker)
        attackers_answer = await approve_upstream(await started(attacker, instance))
    await log_in_new_member(client)

    response = await client.get(attackers_answer)

    assert_refused(response, "oauth_state_invalid")
    assert token_requests(instance) == 0


async def test_a_foreign_code_under_the_members_own_state_gets_no_token(
    app: Any, client: httpx.AsyncClient, instance: FakeMastodon
) -> None:
    # RFC 9700 §4.5: the attacker's code was issued to another client registration and
    # another PKCE challenge, so the instance refuses it and nothing is connected.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=str(client.base_url)) as attacker:
        await log_in_new_member(attacker)
        attackers_answer = await approve_upstream(await started(attacker, instance))
    await log_in_new_member(client)
    own_answer = await approve_upstream(await started(client, instance))
    path, own_query = own_answer.split("?", 1)
    state = parse_qs(own_query)["state"][0]
    code = parse_qs(attackers_answer.split("?", 1)[1])["code"][0]

    response = await client.get(f"{path}?{urlencode({'code': code, 'state': state})}")

    assert response.status_code == 502
    assert "<code>oauth_token_failed</code>" in response.text
    [refused] = instance.log.to("/oauth/token")
    assert refused.form["code"] == code and refused.form["code_verifier"]
    assert "You have not connected anything yet." in (await client.get("/connectors")).text


async def test_the_same_members_other_browser_cannot_finish_the_flow(
    app: Any, client: httpx.AsyncClient, instance: FakeMastodon
) -> None:
    from tests.web.journeys import log_in, new_credentials, sign_up

    creds = new_credentials()
    await sign_up(client, creds)
    await log_in(client, creds)
    answer = await approve_upstream(await started(client, instance))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=str(client.base_url)) as other:
        await log_in(other, creds)
        response = await other.get(answer)

    assert_refused(response, "oauth_state_invalid")
    assert token_requests(instance) == 0


async def test_an_expired_flow_is_refused(
    client: httpx.AsyncClient, instance: FakeMastodon
) -> None:
    await log_in_new_member(client)
    answer = await approve_upstream(await started(client, instance))
    clock.advance(9 * 60)
    await client.get("/account")  # keep the web session alive (idle timeout)
    clock.advance(2 * 60)

    response = await client.get(answer)

    assert_refused(response, "oauth_state_expired")
    assert token_requests(instance) == 0


async def test_a_state_works_once(
    app: Any, client: httpx.AsyncClient, instance: FakeMastodon
) -> None:
    await log_in_new_member(client)
    answer = await approve_upstream(await started(client, instance))
    assert (await client.get(answer)).status_code == 303

    replay = await client.get(answer)

    assert_refused(replay, "oauth_state_invalid")
    assert token_requests(instance) == 1
    await jobs_of(app).queue.drain()


async def test_a_member_who_denies_access_gets_no_connection(
    client: httpx.AsyncClient, instance: FakeMastodon
) -> None:
    instance.auto_approve = False
    await log_in_new_member(client)
    answer = await approve_upstream(await started(client, instance))

    response = await client.get(answer)

    assert_refused(response, "oauth_denied")
    assert token_requests(instance) == 0
    assert "You have not connected anything yet." in (await client.get("/connectors")).text


async def test_a_callback_after_logging_out_is_refused(
    client: httpx.AsyncClient, instance: FakeMastodon
) -> None:
    from tests.web.journeys import log_out

    await log_in_new_member(client)
    answer = await approve_upstream(await started(client, instance))
    await log_out(client)

    response = await client.get(answer)

    assert response.status_code == 400
    assert token_requests(instance) == 0


async def test_a_failing_token_endpoint_is_reported_without_a_connection(
    client: httpx.AsyncClient, instance: FakeMastodon
) -> None:
    await log_in_new_member(client)
    answer = await approve_upstream(await started(client, instance))
    instance.fail_next(503, path="/oauth/token")

    response = await client.get(answer)

    assert response.status_code == 502
    assert "<code>oauth_token_failed</code>" in response.text
    assert "You have not connected anything yet." in (await client.get("/connectors")).text


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("not a server", "invalid_instance"),
        ("http://example.social", "invalid_instance"),
        ("https://example.social/@alice", "invalid_instance"),
        ("https://169.254.169.254", "url_not_allowed"),
        ("https://10.0.0.5", "url_not_allowed"),
        ("https://[::1]:5432", "url_not_allowed"),
    ],
)
async def test_instances_that_are_not_public_https_servers_are_refused(
    client: httpx.AsyncClient, typed: str, code: str
) -> None:
    await log_in_new_member(client)

    response = await start(client, typed)

    # Not a dead end: the catalogue again, the error above it, the name still in its field.
    assert response.status_code == 400
    assert f'<span class="muted">({code})</span>' in response.text
    assert 'action="/connectors/mastodon/connect"' in response.text
    assert f'value="{html.escape(typed)}"' in response.text


async def test_starting_needs_a_csrf_token(
    client: httpx.AsyncClient, instance: FakeMastodon
) -> None:
    await log_in_new_member(client)

    response = await client.post("/connectors/mastodon/connect", data={"instance": instance.url})

    assert response.status_code == 403
    assert instance.log.all() == []


async def test_flows_are_stored_with_only_a_hash_of_state_and_a_sealed_verifier(
    client: httpx.AsyncClient, instance: FakeMastodon
) -> None:
    from tests.fakes.upstream import database_contains

    await log_in_new_member(client)
    url = await started(client, instance)
    state = parse_qs(urlsplit(url).query)["state"][0]

    [flow] = await OAuthFlow.all()
    assert flow.state_hash != state
    assert await database_contains(state) == []
    assert await database_contains(instance.url) == []
    assert (flow.expires_at - flow.created_at).total_seconds() == 600


def test_loopback_http_is_only_allowed_when_the_operator_allows_loopback(
    settings: Settings,
) -> None:
    from coop.connectors.oauth_client import loopback_allowed

    assert loopback_allowed(settings)
    assert not loopback_allowed(dataclasses.replace(settings, outbound_allow=()))
