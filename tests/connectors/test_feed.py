"""The feed connector end to end: a real blog on loopback, the real engine, both databases."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from tortoise import connections

from coop.config import Settings
from coop.connectors import service
from coop.connectors.models import Connection, Record
from coop.errors import UrlNotAllowedError
from coop.jobs import sync as sync_jobs
from coop.vault import Vault
from tests.connectors.helpers import scan_rows
from tests.fakes.blog import Blog
from tests.fakes.server import LiveServer
from tests.sqlite_files import sqlite_bytes

CANARY = "Canary title 7f3a"


async def connect(jobs: sync_jobs.Jobs, member: uuid.UUID, url: str) -> uuid.UUID:
    view = await sync_jobs.connect_feed(jobs, member_id=member, url=url)
    await jobs.queue.drain()
    return view.id


async def test_connecting_a_feed_stores_its_posts_sealed(
    jobs: sync_jobs.Jobs, member: uuid.UUID, blog: Blog, blog_server: LiveServer, database_url: str
) -> None:
    blog.add_post(CANARY, body="<p>Hello <b>world</b> &amp; friends</p>", comments=4)
    blog.add_post("Second post")
    connection_id = await connect(jobs, member, blog_server.url("/rss.xml"))

    records = await service.list_records(vault=jobs.vault, member_id=member)
    assert [r.title for r in records] == [CANARY, "Second post"]
    assert records[0].text == "Hello world & friends"
    assert records[0].counts == {"replies": 4}
    assert records[0].url == "https://blog.example/posts/1"
    assert all(r.connection_id == connection_id for r in records)

    rows = await Record.all().values()
    rows += await Connection.all().values()
    assert not scan_rows(rows, CANARY)
    assert not scan_rows(rows, "blog.example")
    assert not scan_rows(rows, "127.0.0.1")  # the feed URL is sealed too
    if database_url.startswith("sqlite://"):
        await connections.get("default").execute_script("PRAGMA wal_checkpoint(TRUNCATE)")
        assert CANARY.encode() not in await asyncio.to_thread(sqlite_bytes, database_url)


async def test_connection_health_shows_ok_with_counts_and_next_sync(
    jobs: sync_jobs.Jobs, member: uuid.UUID, blog: Blog, blog_server: LiveServer
) -> None:
    blog.add_post("One")
    connection_id = await connect(jobs, member, blog_server.url("/atom.xml"))
    view = await service.get_connection(
        vault=jobs.vault, registry=jobs.registry, member_id=member, connection_id=connection_id
    )
    assert (view.status, view.records_count, view.status_reason) == ("ok", 1, "")
    assert view.last_sync_at is not None and view.next_sync_at is not None
    assert view.label == blog_server.url("/atom.xml")
    assert [r.outcome for r in view.runs] == ["ok"]


async def test_resyncing_the_same_feed_never_duplicates_and_picks_up_new_posts(
    jobs: sync_jobs.Jobs, member: uuid.UUID, blog: Blog, blog_server: LiveServer
) -> None:
    for n in range(3):
        blog.add_post(f"Post {n}")
    connection_id = await connect(jobs, member, blog_server.url("/rss.xml"))
    for _ in range(3):
        outcome = await jobs.engine.run(connection_id)
        assert (outcome.outcome, outcome.records_added) == ("ok", 0)
    assert await Record.filter(connection_id=connection_id).count() == 3

    blog.add_post("Post 3")
    outcome = await jobs.engine.run(connection_id)
    assert outcome.records_added == 1
    assert await Record.filter(connection_id=connection_id).count() == 4


async def test_a_feed_forgetting_its_cursor_still_upserts_the_same_rows(
    jobs: sync_jobs.Jobs, member: uuid.UUID, blog: Blog, blog_server: LiveServer
) -> None:
    blog.add_post("Stable")
    connection_id = await connect(jobs, member, blog_server.url("/rss.xml"))
    before = await Record.filter(connection_id=connection_id).values_list("id", flat=True)
    await Connection.filter(id=connection_id).update(cursor_sealed=None)
    blog.posts[0].title = "Stable, edited"
    await jobs.engine.run(connection_id)
    after = await Record.filter(connection_id=connection_id).values_list("id", flat=True)
    assert before == after
    records = await service.list_records(vault=jobs.vault, member_id=member)
    assert [r.title for r in records] == ["Stable, edited"]


async def test_feed_markup_is_reduced_to_text(
    jobs: sync_jobs.Jobs, member: uuid.UUID, blog: Blog, blog_server: LiveServer
) -> None:
    blog.add_post(
        "<img src=x onerror=alert(1)>Title",
        body="<script>alert(1)</script><p>Visible</p><style>p{}</style>",
    )
    await connect(jobs, member, blog_server.url("/rss.xml"))
    [record] = await service.list_records(vault=jobs.vault, member_id=member)
    assert record.title == "Title"
    assert record.text == "Visible"


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/billion-laughs.xml", "unsafe_xml"),
        ("/xxe.xml", "unsafe_xml"),
        ("/not-a-feed", "invalid_source"),
        ("/huge.xml", "source_too_large"),
        ("/redirect-internal", "url_not_allowed"),
        ("/status/404", "upstream_error"),
    ],
)
async def test_hostile_or_broken_feeds_mark_the_connection_failing_with_a_reason(
    jobs: sync_jobs.Jobs,
    member: uuid.UUID,
    blog: Blog,
    blog_server: LiveServer,
    path: str,
    code: str,
) -> None:
    connection_id = await connect(jobs, member, blog_server.url(path))
    row = await Connection.get(id=connection_id)
    assert row.status == "failing"
    assert row.status_reason
    assert await Record.filter(connection_id=connection_id).count() == 0
    view = await service.get_connection(
        vault=jobs.vault, registry=jobs.registry, member_id=member, connection_id=connection_id
    )
    assert view.runs[0].error_code == code
    if path == "/huge.xml":
        assert blog.huge_sent < 16 * 1024 * 1024  # stopped reading near the 5 MB cap


async def test_a_feed_redirect_within_the_allowed_host_is_followed(
    jobs: sync_jobs.Jobs, member: uuid.UUID, blog: Blog, blog_server: LiveServer
) -> None:
    blog.add_post("Moved")
    await connect(jobs, member, blog_server.url("/moved"))
    assert [r.title for r in await service.list_records(vault=jobs.vault, member_id=member)] == [
        "Moved"
    ]


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/feed",
        "http://10.0.0.5/feed",
        "ftp://blog.example/feed",
        "file:///etc/passwd",
        "http://user:pw@127.0.0.1/feed",
    ],
)
async def test_connecting_a_feed_at_a_private_address_is_refused(
    jobs: sync_jobs.Jobs, member: uuid.UUID, url: str
) -> None:
    with pytest.raises(UrlNotAllowedError) as caught:
        await sync_jobs.connect_feed(jobs, member_id=member, url=url)
    assert caught.value.code == "url_not_allowed"
    assert caught.value.status == 400
    assert await Connection.filter(member_id=member).count() == 0


async def test_a_feed_host_that_resolves_to_a_private_address_is_refused(
    settings: Settings, vault: Vault, member: uuid.UUID
) -> None:
    async def intranet_dns(host: str, port: int) -> list[str]:
        return ["10.0.0.5"]

    bundle = sync_jobs.setup(settings, vault, resolver=intranet_dns)
    with pytest.raises(UrlNotAllowedError):
        await sync_jobs.connect_feed(bundle, member_id=member, url="https://blog.example/feed")
    assert await Connection.filter(member_id=member).count() == 0
