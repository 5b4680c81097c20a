"""The github connector driven by the real sync engine (retries, stored credentials) against a
fake GitHub on loopback."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from coop.config import Settings
from coop.connectors import service, spec
from coop.connectors.builtin.github import GitHubApp, GitHubConnector, token_credentials
from coop.connectors.models import Connection, Record
from coop.connectors.registry import Registry
from coop.jobs import sync as sync_jobs
from coop.jobs.engine import SyncOutcome
from coop.types import clock
from coop.vault import Vault
from tests.connectors.helpers import FakeSleep, withdrawing_after
from tests.fakes.github import LOGIN, FakeGitHub, running_github

TOKEN_PATH = "/login/oauth/access_token"
EVENTS = f"/users/{LOGIN}/events/public"


# The github connector, the member withdrawing right after the first page of repositories.
WithdrawnAfterRepositories = withdrawing_after(GitHubConnector, spec.REPOSITORY)


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with running_github() as server:
        yield server


@pytest.fixture
async def github_jobs(
    settings: Settings, vault: Vault, fake_sleep: FakeSleep, fake: FakeGitHub, db: str
) -> AsyncIterator[sync_jobs.Jobs]:
    app = GitHubApp(fake.client_id, fake.client_secret, base_url=fake.url, api_url=fake.url)
    registry = Registry({"github": WithdrawnAfterRepositories(app)})
    bundle = sync_jobs.setup(settings, vault, registry=registry, sleep=fake_sleep, rand=lambda: 1.0)
    yield bundle
    await bundle.queue.close()


async def github_connection(jobs: sync_jobs.Jobs, fake: FakeGitHub, member: uuid.UUID) -> uuid.UUID:
    token = fake.issue_token()
    credentials = token_credentials(
        {
            "access_token": token.access,
            "refresh_token": token.refresh,
            "expires_in": 28800,
            "refresh_token_expires_in": 15897600,
        }
    )
    view = await service.create_connection(
        vault=jobs.vault,
        registry=jobs.registry,
        member_id=member,
        connector="github",
        config={},
        credentials=credentials,
    )
    return view.id


async def test_a_token_refreshed_before_a_transient_failure_is_reused_by_the_retry(
    github_jobs: sync_jobs.Jobs, fake: FakeGitHub, member: uuid.UUID, fake_sleep: FakeSleep
) -> None:
    fake.add_repos(2)
    fake.add_events(3)
    connection_id = await github_connection(github_jobs, fake, member)
    clock.advance(9 * 3600)  # the stored access token has expired: the run refreshes first
    fake.fail_next(503, path="/user/repos")  # ...then GitHub fails once after the refresh

    outcome = await github_jobs.engine.run(connection_id)

    assert (outcome.outcome, outcome.error_code) == ("ok", "")
    assert len(fake_sleep.delays) == 1  # the engine retried once
    assert len(fake.log.to(TOKEN_PATH)) == 1  # one refresh, never with the spent token
    [live] = fake.live_tokens()
    api_calls = [r for r in fake.log.all() if r.path != TOKEN_PATH]
    assert {r.headers["authorization"] for r in api_calls} == {f"Bearer {live.access}"}
    assert (await Connection.get(id=connection_id)).status == "ok"
    assert await Record.filter(kind="repository").count() == 2
    assert await Record.filter(kind="activity").count() == 3


async def test_a_disconnect_while_paging_ends_the_run_withdrawn_before_the_next_request(
    github_jobs: sync_jobs.Jobs, fake: FakeGitHub, member: uuid.UUID
) -> None:
    fake.add_repos(2)
    fake.add_events(3)
    connection_id = await github_connection(github_jobs, fake, member)
    connector = github_jobs.registry.get("github")
    assert isinstance(connector, WithdrawnAfterRepositories)

    async def disconnect() -> None:
        await sync_jobs.disconnect(github_jobs, member_id=member, connection_id=connection_id)

    connector.withdraw = disconnect
    hooked: list[SyncOutcome] = []

    async def hook(outcome: SyncOutcome) -> None:
        hooked.append(outcome)

    github_jobs.engine.after_sync.append(hook)

    outcome = await github_jobs.engine.run(connection_id)

    assert outcome.outcome == "withdrawn"
    assert hooked == []  # no rescoring of a member who withdrew
    assert fake.log.to(EVENTS) == []  # the request after the disconnect never went out
    assert await Connection.all().count() == 0
    assert await Record.all().count() == 0
