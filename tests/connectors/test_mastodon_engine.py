"""The mastodon connector driven by the real sync engine against a fake instance on loopback."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from coop.config import Settings
from coop.connectors import service, spec
from coop.connectors.builtin.mastodon import MastodonConnector
from coop.connectors.models import Connection, Record
from coop.connectors.registry import Registry
from coop.jobs import sync as sync_jobs
from coop.jobs.engine import SyncOutcome
from coop.vault import Vault
from tests.connectors.helpers import FakeSleep, withdrawing_after
from tests.fakes.mastodon import ACCOUNT_ID, FakeMastodon, running_mastodon

STATUSES = f"/api/v1/accounts/{ACCOUNT_ID}/statuses"


# The mastodon connector, the member withdrawing right after the first page of posts.
WithdrawnAfterFirstPosts = withdrawing_after(MastodonConnector, spec.POST)


@pytest.fixture
def fake() -> Iterator[FakeMastodon]:
    with running_mastodon() as server:
        yield server


@pytest.fixture
async def mastodon_jobs(
    settings: Settings, vault: Vault, fake_sleep: FakeSleep, db: str
) -> AsyncIterator[sync_jobs.Jobs]:
    registry = Registry({"mastodon": WithdrawnAfterFirstPosts(page_size=20)})
    bundle = sync_jobs.setup(settings, vault, registry=registry, sleep=fake_sleep, rand=lambda: 1.0)
    yield bundle
    await bundle.queue.close()


async def test_a_disconnect_while_paging_ends_the_run_withdrawn_before_the_next_request(
    mastodon_jobs: sync_jobs.Jobs, fake: FakeMastodon, member: uuid.UUID
) -> None:
    fake.add_statuses(60)
    app, token = fake.issue_token()
    view = await service.create_connection(
        vault=mastodon_jobs.vault,
        registry=mastodon_jobs.registry,
        member_id=member,
        connector="mastodon",
        config={"instance": fake.url},
        credentials={
            "access_token": token,
            "client_id": app.client_id,
            "client_secret": app.client_secret,
        },
    )
    connector = mastodon_jobs.registry.get("mastodon")
    assert isinstance(connector, WithdrawnAfterFirstPosts)

    async def disconnect() -> None:
        await sync_jobs.disconnect(mastodon_jobs, member_id=member, connection_id=view.id)

    connector.withdraw = disconnect
    hooked: list[SyncOutcome] = []

    async def hook(outcome: SyncOutcome) -> None:
        hooked.append(outcome)

    mastodon_jobs.engine.after_sync.append(hook)

    outcome = await mastodon_jobs.engine.run(view.id)

    assert outcome.outcome == "withdrawn"
    assert hooked == []  # no rescoring of a member who withdrew
    assert len(fake.log.to(STATUSES)) == 1  # the next page was never requested
    assert await Connection.all().count() == 0
    assert await Record.all().count() == 0
