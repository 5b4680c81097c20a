"""The github connector against a fake GitHub on loopback, through the guarded client."""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import pytest

from coop.connectors import spec
from coop.connectors.builtin.github import GitHubApp, GitHubConnector, token_credentials
from coop.connectors.outbound import OutboundClient
from coop.types import clock, utcnow
from tests.fakes.github import LOGIN, FakeGitHub, running_github
from tests.fakes.upstream import ContextHarness, Drain, Fault, loopback_client

TOKEN_PATH = "/login/oauth/access_token"
EVENTS = f"/users/{LOGIN}/events/public"


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    clock.reset()
    with running_github() as server:
        yield server
    clock.reset()


@pytest.fixture
async def http() -> AsyncIterator[OutboundClient]:
    async with loopback_client() as client:
        yield client


def credentials_for(fake: FakeGitHub) -> dict[str, str]:
    token = fake.issue_token()
    body = {
        "access_token": token.access,
        "refresh_token": token.refresh,
        "expires_in": 28800,
        "refresh_token_expires_in": 15897600,
    }
    return token_credentials(body)


@pytest.fixture
def harness(fake: FakeGitHub) -> ContextHarness:
    return ContextHarness(config={}, credentials=credentials_for(fake))


def connector(fake: FakeGitHub) -> GitHubConnector:
    return GitHubConnector(
        GitHubApp(fake.client_id, fake.client_secret, base_url=fake.url, api_url=fake.url)
    )


def bearer_of(request: object) -> str:
    return getattr(request, "headers", {}).get("authorization", "").removeprefix("Bearer ")


async def test_sync_reads_public_owned_repositories_events_and_the_follower_count(
    fake: FakeGitHub, harness: ContextHarness, http: OutboundClient
) -> None:
    fake.add_repos(120)
    fake.add_repos(2, private=True)
    fake.add_events(150)

    drain = await Drain().run(connector(fake), harness.context(http))

    repos = drain.of_kind(spec.REPOSITORY)
    assert len(repos) == 120
    by_id = {f"repo:{r['id']}": r for r in fake.repos}
    for record in repos:
        upstream = by_id[record.external_id]
        assert record.counts == {
            "stars": upstream["stargazers_count"],
            "forks": upstream["forks_count"],
        }
    activity = drain.of_kind(spec.ACTIVITY)
    assert len(activity) == 150
    assert {a.title for a in activity} <= {"PushEvent", "WatchEvent", "IssuesEvent"}
    assert all(a.text is None and not a.counts for a in activity)
    [audience] = drain.of_kind(spec.AUDIENCE)
    assert audience.counts == {"followers": 17}
    assert drain.cursor == fake.events[0]["id"]
    assert [r.query.get("type") for r in fake.log.to("/user/repos")] == ["owner", "owner"]


async def test_a_second_sync_reads_only_new_events_and_stops_paging_at_the_cursor(
    fake: FakeGitHub, harness: ContextHarness, http: OutboundClient
) -> None:
    fake.add_events(150)
    drain = await Drain().run(connector(fake), harness.context(http))
    fake.add_events(5)
    fake.log.clear()
    drain.records.clear()

    await drain.run(connector(fake), harness.context(http))

    assert len(drain.of_kind(spec.ACTIVITY)) == 5
    assert len(fake.log.to(EVENTS)) == 1
    assert drain.cursor == fake.events[0]["id"]


async def test_an_expired_token_is_refreshed_once_and_persisted_before_it_is_used(
    fake: FakeGitHub, http: OutboundClient
) -> None:
    fake.add_repos(1)
    creds = credentials_for(fake)
    del creds["expires_at"]  # expiry unknown: GitHub's 401 is the signal
    harness = ContextHarness(config={}, credentials=creds)

    def not_used_yet(new: object) -> None:
        access = new["access_token"]  # type: ignore[index]
        assert all(bearer_of(r) != access for r in fake.log.all())

    harness.on_save = not_used_yet
    clock.advance(9 * 3600)

    drain = await Drain().run(connector(fake), harness.context(http))

    assert len(drain.of_kind(spec.REPOSITORY)) == 1
    [saved] = harness.saved
    assert saved["access_token"] != creds["access_token"]
    assert saved["refresh_token"] != creds["refresh_token"]
    assert len(fake.log.to(TOKEN_PATH)) == 1
    api_calls = [r for r in fake.log.all() if r.path != TOKEN_PATH]
    assert bearer_of(api_calls[0]) == creds["access_token"]  # the 401
    assert {bearer_of(r) for r in api_calls[1:]} == {saved["access_token"]}


async def test_a_token_past_its_stored_expiry_is_refreshed_before_any_api_call(
    fake: FakeGitHub, harness: ContextHarness, http: OutboundClient
) -> None:
    clock.advance(8 * 3600)

    await Drain().run(connector(fake), harness.context(http))

    assert fake.log.all()[0].path == TOKEN_PATH
    assert len(harness.saved) == 1
    api_calls = [r for r in fake.log.all() if r.path != TOKEN_PATH]
    assert {bearer_of(r) for r in api_calls} == {harness.saved[0]["access_token"]}


async def test_bad_refresh_token_needs_reauthorization_without_retrying(
    fake: FakeGitHub, http: OutboundClient
) -> None:
    creds = credentials_for(fake)
    creds["refresh_token"] = "ghr_used-or-forged"
    harness = ContextHarness(config={}, credentials=creds)
    clock.advance(9 * 3600)

    with pytest.raises(spec.NeedsReauthorization):
        await Drain().run(connector(fake), harness.context(http))

    assert len(fake.log.to(TOKEN_PATH)) == 1
    assert harness.saved == []


async def test_a_used_refresh_token_stops_working(
    fake: FakeGitHub, harness: ContextHarness, http: OutboundClient
) -> None:
    old = dict(harness.credentials)
    clock.advance(8 * 3600)
    await Drain().run(connector(fake), harness.context(http))

    replay = ContextHarness(config={}, credentials=old)
    with pytest.raises(spec.NeedsReauthorization):
        await Drain().run(connector(fake), replay.context(http))


async def test_a_401_without_a_refresh_token_needs_reauthorization(
    fake: FakeGitHub, http: OutboundClient
) -> None:
    harness = ContextHarness(config={}, credentials={"access_token": "gho_revoked"})

    with pytest.raises(spec.NeedsReauthorization):
        await Drain().run(connector(fake), harness.context(http))

    assert fake.log.to(TOKEN_PATH) == []


async def test_a_primary_rate_limit_403_waits_until_the_reset(
    fake: FakeGitHub, harness: ContextHarness, http: OutboundClient
) -> None:
    fake.rate_limit_next(status=403, reset_in=600, path="/user/repos")

    with pytest.raises(spec.Throttled) as caught:
        await Drain().run(connector(fake), harness.context(http))

    assert 595 <= caught.value.retry_after <= 601


async def test_a_secondary_rate_limit_honours_retry_after(
    fake: FakeGitHub, harness: ContextHarness, http: OutboundClient
) -> None:
    fake.secondary_limit_next(retry_after=30, path="/user")

    with pytest.raises(spec.Throttled) as caught:
        await Drain().run(connector(fake), harness.context(http))

    assert caught.value.retry_after == 30


async def test_an_exhausted_rate_limit_stops_before_the_next_request(
    fake: FakeGitHub, harness: ContextHarness, http: OutboundClient
) -> None:
    fake.rate_remaining = 1

    with pytest.raises(spec.Throttled) as caught:
        await Drain().run(connector(fake), harness.context(http))

    assert caught.value.retry_after > 3000
    assert len(fake.log.all()) == 1


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_transient(
    fake: FakeGitHub, harness: ContextHarness, http: OutboundClient, status: int
) -> None:
    fake.add_events(3)
    fake.fail_next(status, path=EVENTS)
    drain = Drain(cursor="7")

    with pytest.raises(spec.TransientUpstreamError):
        await drain.run(connector(fake), harness.context(http))

    assert drain.cursor == "7"


async def test_a_malformed_body_is_a_permanent_error(
    fake: FakeGitHub, harness: ContextHarness, http: OutboundClient
) -> None:
    fake.malform_next(path="/user")

    with pytest.raises(spec.PermanentUpstreamError):
        await Drain().run(connector(fake), harness.context(http))


async def test_pagination_links_to_another_host_are_not_followed(
    fake: FakeGitHub, harness: ContextHarness, http: OutboundClient
) -> None:
    fake.faults.add(
        Fault(
            status=200,
            path="/user/repos",
            body=b"[]",
            headers={"link": '<http://169.254.169.254/latest/meta-data>; rel="next"'},
        )
    )

    with pytest.raises(spec.PermanentUpstreamError):
        await Drain().run(connector(fake), harness.context(http))


async def test_revoke_deletes_the_grant_with_the_app_credentials(
    fake: FakeGitHub, harness: ContextHarness, http: OutboundClient
) -> None:
    await connector(fake).revoke(harness.context(http))

    [call] = fake.log.to(f"/applications/{fake.client_id}/grant", "DELETE")
    basic = base64.b64encode(f"{fake.client_id}:{fake.client_secret}".encode()).decode()
    assert call.headers["authorization"] == f"Basic {basic}"
    assert call.form["access_token"] == harness.credentials["access_token"]
    assert fake.live_tokens() == []


async def test_a_failed_revoke_is_logged_without_secrets_and_not_raised(
    fake: FakeGitHub,
    harness: ContextHarness,
    http: OutboundClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake.fail_next(500, path="/applications/")

    with caplog.at_level(logging.INFO):
        await connector(fake).revoke(harness.context(http))

    assert "github revoke failed" in caplog.text
    for secret in [*harness.credentials.values(), fake.client_secret]:
        assert all(secret not in str(r.__dict__) for r in caplog.records)


def test_the_app_settings_come_from_the_environment() -> None:
    github = GitHubConnector()
    github.configure(
        {
            "COOP_GITHUB_CLIENT_ID": "Iv1.abc",
            "COOP_GITHUB_CLIENT_SECRET": "s3cret",
            "COOP_GITHUB_BASE_URL": "https://ghe.example/",
        }
    )
    assert github.app.configured
    assert github.app.token_url == "https://ghe.example/login/oauth/access_token"
    assert github.app.api_url == "https://api.github.com"


def test_token_responses_become_absolute_expiry_times() -> None:
    creds = token_credentials({"access_token": "a", "refresh_token": "r", "expires_in": 28800})
    expires = creds["expires_at"]
    assert abs((utcnow() + timedelta(hours=8)).timestamp() - _ts(expires)) < 5


def _ts(value: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value).timestamp()


def test_the_connector_meets_the_contract() -> None:
    from coop.connectors.registry import validate

    validate(GitHubConnector())
    assert isinstance(GitHubConnector(), spec.Connector)
    assert isinstance(GitHubConnector(), spec.Revocable)
    assert isinstance(GitHubConnector(), spec.Configurable)
