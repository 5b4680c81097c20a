"""Connector service: disconnect deletes data and revokes upstream; records for scoring."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import ClassVar

import pytest

from coop.config import Settings
from coop.connectors import service, spec
from coop.connectors.models import Connection, Record, SyncRun
from coop.connectors.registry import Registry
from coop.errors import NotFoundError
from coop.jobs import sync as sync_jobs
from coop.vault import MemberCipher, Vault, load_keyring, load_secret_key
from tests.connectors.helpers import FakeSleep, make_member
from tests.fakes.blog import Blog
from tests.fakes.server import LiveServer


class RevocableConnector:
    api_version: ClassVar[int] = spec.API_VERSION
    name: ClassVar[str] = "revocable"
    title: ClassVar[str] = "Revocable"
    description: ClassVar[str] = "Gives its token back."
    reads: ClassVar[tuple[str, ...]] = (spec.POST, spec.AUDIENCE)
    never_reads: ClassVar[tuple[str, ...]] = ()
    auth: ClassVar[spec.AuthMethod] = "oauth2"

    def __init__(self, revoke_url: str, *, failures: int = 0) -> None:
        self.revoke_url = revoke_url
        self.failures = failures
        self.revoked: list[str] = []

    async def sync(
        self, ctx: spec.SyncContext, cursor: str | None
    ) -> AsyncIterator[spec.SyncBatch]:
        when = datetime(2026, 11, 1, tzinfo=UTC)
        yield spec.SyncBatch(
            records=[
                spec.Record(kind=spec.POST, external_id="p1", occurred_at=when, title="post"),
                spec.Record(
                    kind=spec.AUDIENCE, external_id="a1", occurred_at=when, counts={"followers": 9}
                ),
            ],
            cursor="done",
        )

    async def revoke(self, ctx: spec.SyncContext) -> None:
        self.revoked.append(ctx.credentials["access_token"])
        await ctx.http.get(self.revoke_url)
        if self.failures > 0:
            self.failures -= 1
            raise spec.TransientUpstreamError("revocation endpoint down")


async def setup_connected(
    settings: Settings, vault: Vault, connector: RevocableConnector
) -> tuple[sync_jobs.Jobs, uuid.UUID, uuid.UUID]:
    jobs = sync_jobs.setup(
        settings,
        vault,
        registry=Registry({"revocable": connector}),
        sleep=FakeSleep(),
        rand=lambda: 1.0,
    )
    member = await make_member(vault)
    view = await sync_jobs.connect(
        jobs,
        member_id=member,
        connector="revocable",
        config={"instance": "https://social.example"},
        credentials={"access_token": "tok-123"},
    )
    await jobs.queue.drain()
    return jobs, member, view.id


async def test_disconnect_deletes_the_records_and_revokes_the_upstream_token(
    settings: Settings, vault: Vault, db: str, blog: Blog, blog_server: LiveServer
) -> None:
    connector = RevocableConnector(blog_server.url("/rss.xml"))
    jobs, member, connection_id = await setup_connected(settings, vault, connector)
    assert await Record.filter(connection_id=connection_id).count() == 2

    deleted = await sync_jobs.disconnect(jobs, member_id=member, connection_id=connection_id)
    assert deleted == 2
    assert connector.revoked == ["tok-123"]
    assert [path for path, _ in blog.requests] == ["/rss.xml"]
    assert await Record.all().count() == 0
    assert await Connection.all().count() == 0
    assert await SyncRun.all().count() == 0
    await jobs.queue.close()


async def test_a_failing_upstream_revocation_never_undoes_the_disconnect(
    settings: Settings, vault: Vault, db: str, blog: Blog, blog_server: LiveServer
) -> None:
    connector = RevocableConnector(blog_server.url("/status/500"), failures=100)
    jobs, member, connection_id = await setup_connected(settings, vault, connector)
    deleted = await sync_jobs.disconnect(jobs, member_id=member, connection_id=connection_id)
    assert deleted == 2
    assert await Connection.all().count() == 0 and await Record.all().count() == 0
    await jobs.queue.drain()
    assert connector.revoked == ["tok-123"] * (1 + sync_jobs.REVOKE_RETRIES)
    assert jobs.engine.sleep.delays == [2.0, 4.0, 8.0]  # type: ignore[attr-defined]
    await jobs.queue.close()


async def test_a_failed_revocation_is_retried_in_the_background_until_it_succeeds(
    settings: Settings, vault: Vault, db: str, blog: Blog, blog_server: LiveServer
) -> None:
    connector = RevocableConnector(blog_server.url("/rss.xml"), failures=2)
    jobs, member, connection_id = await setup_connected(settings, vault, connector)
    await sync_jobs.disconnect(jobs, member_id=member, connection_id=connection_id)
    assert connector.revoked == ["tok-123"]  # the first try ran inside the request
    await jobs.queue.drain()
    assert connector.revoked == ["tok-123"] * 3
    assert [p for p, _ in blog.requests] == ["/rss.xml"] * 3
    await jobs.queue.close()


async def test_members_cannot_see_or_disconnect_each_others_connections(
    settings: Settings, vault: Vault, db: str, blog_server: LiveServer
) -> None:
    connector = RevocableConnector(blog_server.url("/rss.xml"))
    jobs, _owner, connection_id = await setup_connected(settings, vault, connector)
    stranger = await make_member(vault)
    with pytest.raises(NotFoundError) as caught:
        await service.get_connection(
            vault=vault, registry=jobs.registry, member_id=stranger, connection_id=connection_id
        )
    assert caught.value.code == "connection_not_found"
    with pytest.raises(NotFoundError):
        await sync_jobs.disconnect(jobs, member_id=stranger, connection_id=connection_id)
    with pytest.raises(NotFoundError):
        await sync_jobs.sync_now(jobs, member_id=stranger, connection_id=connection_id)
    assert connector.revoked == []
    assert (
        await service.list_connections(vault=vault, registry=jobs.registry, member_id=stranger)
        == []
    )
    assert await service.list_records(vault=vault, member_id=stranger) == []
    await jobs.queue.close()


async def test_list_records_filters_by_kind_and_returns_row_ids(
    settings: Settings, vault: Vault, db: str, blog_server: LiveServer
) -> None:
    connector = RevocableConnector(blog_server.url("/rss.xml"))
    jobs, member, connection_id = await setup_connected(settings, vault, connector)
    audience = await service.list_records(vault=vault, member_id=member, kinds=["audience"])
    assert [(r.kind, dict(r.counts)) for r in audience] == [("audience", {"followers": 9})]
    row = await Record.get(id=audience[0].id)
    assert row.connection_id == connection_id  # type: ignore[attr-defined]
    assert len(await service.list_records(vault=vault, member_id=member)) == 2
    await jobs.queue.close()


async def test_list_records_by_ids_reads_only_those_records_of_this_member(
    settings: Settings, vault: Vault, db: str, blog_server: LiveServer
) -> None:
    connector = RevocableConnector(blog_server.url("/rss.xml"))
    jobs, member, _ = await setup_connected(settings, vault, connector)
    everything = await service.list_records(vault=vault, member_id=member)
    one = everything[0]
    picked = await service.list_records(vault=vault, member_id=member, ids=[one.id])
    assert picked == [one]
    stranger = await make_member(vault)
    assert await service.list_records(vault=vault, member_id=stranger, ids=[one.id]) == []
    await jobs.queue.close()


async def test_connecting_an_unknown_connector_is_refused(
    settings: Settings, vault: Vault, db: str
) -> None:
    jobs = sync_jobs.setup(settings, vault, registry=Registry({}))
    member = await make_member(vault)
    with pytest.raises(NotFoundError) as caught:
        await sync_jobs.connect(jobs, member_id=member, connector="nope", config={})
    assert caught.value.code == "unknown_connector"
    assert await Connection.all().count() == 0


class CountingVault(Vault):
    """The real vault, counting how often a member's key is unwrapped."""

    unwraps = 0

    async def cipher_for(self, member_id: uuid.UUID) -> MemberCipher:
        self.unwraps += 1
        return await super().cipher_for(member_id)


async def test_listing_connections_unwraps_the_members_key_once(
    settings: Settings, db: str
) -> None:
    vault = CountingVault(load_keyring(settings), load_secret_key(settings))
    registry = Registry({"revocable": RevocableConnector("https://social.example/revoke")})
    member = await make_member(vault)
    for instance in ("https://a.example", "https://b.example", "https://c.example"):
        await service.create_connection(
            vault=vault,
            registry=registry,
            member_id=member,
            connector="revocable",
            config={"instance": instance},
        )
    vault.unwraps = 0
    views = await service.list_connections(vault=vault, registry=registry, member_id=member)
    assert [v.label for v in views] == [
        "https://a.example",
        "https://b.example",
        "https://c.example",
    ]
    assert vault.unwraps == 1
    stranger = await make_member(vault)
    vault.unwraps = 0
    assert await service.list_connections(vault=vault, registry=registry, member_id=stranger) == []
    assert vault.unwraps == 0
