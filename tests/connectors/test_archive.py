"""The archive connector: Mastodon and X/Twitter exports, and hostile ZIPs (SY-09)."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from datetime import UTC, datetime

import pytest

from coop.connectors import service
from coop.connectors.builtin.archive import read_archive
from coop.connectors.models import Connection, Record
from coop.errors import SourceRejectedError, SourceTooLargeError
from coop.jobs import sync as sync_jobs
from tests.connectors.exports import make_zip
from tests.connectors.helpers import scan_rows


def note(n: int, *, replies: int = 0, likes: int = 0, shares: int = 0) -> dict[str, object]:
    return {
        "type": "Create",
        "object": {
            "type": "Note",
            "id": f"https://social.example/users/me/statuses/{n}",
            "url": f"https://social.example/@me/{n}",
            "published": f"2026-10-{n:02d}T10:00:00Z",
            "content": f"<p>Toot number {n}</p>",
            "replies": {"type": "Collection", "totalItems": replies},
            "likes": {"totalItems": likes},
            "shares": {"totalItems": shares},
        },
    }


def mastodon_archive(count: int = 3) -> bytes:
    items = [note(n, replies=n, likes=2 * n, shares=1) for n in range(1, count + 1)]
    items.append({"type": "Announce", "object": "https://other.example/statuses/9"})
    outbox = {"@context": "https://www.w3.org/ns/activitystreams", "orderedItems": items}
    return make_zip(
        {
            "outbox.json": json.dumps(outbox),
            "actor.json": "{}",
            "media_attachments/files/1.png": b"\x89PNG",
        }
    )


def twitter_archive() -> bytes:
    tweets = [
        {
            "tweet": {
                "id_str": "1001",
                "created_at": "Wed Oct 01 10:00:00 +0000 2026",
                "full_text": "My first tweet &amp; more",
                "favorite_count": "7",
                "retweet_count": "2",
            }
        },
        {
            "tweet": {
                "id_str": "1002",
                "created_at": "Thu Oct 02 10:00:00 +0000 2026",
                "full_text": "RT @someone: not mine",
                "favorite_count": "0",
                "retweet_count": "0",
            }
        },
    ]
    body = "window.YTD.tweets.part0 = " + json.dumps(tweets)
    return make_zip({"data/tweets.js": body, "data/direct-messages.js": "secret"})


def test_a_mastodon_outbox_yields_the_members_own_posts_with_counts() -> None:
    records = read_archive(mastodon_archive())
    assert [r.external_id for r in records] == [
        f"mastodon:https://social.example/users/me/statuses/{n}" for n in (1, 2, 3)
    ]
    first = records[0]
    assert first.occurred_at == datetime(2026, 10, 1, 10, tzinfo=UTC)
    assert dict(first.counts) == {"replies": 1, "favourites": 2, "reblogs": 1}
    assert first.text == "Toot number 1"
    assert first.url == "https://social.example/@me/1"


def test_a_twitter_archive_yields_tweets_but_not_retweets() -> None:
    [record] = read_archive(twitter_archive())
    assert record.external_id == "x:1001"
    assert record.occurred_at == datetime(2026, 10, 1, 10, tzinfo=UTC)
    assert dict(record.counts) == {"favourites": 7, "reblogs": 2}
    assert record.text == "My first tweet & more"


async def test_uploading_an_archive_stores_sealed_posts_and_reuploading_adds_nothing(
    jobs: sync_jobs.Jobs, member: uuid.UUID
) -> None:
    view = await sync_jobs.import_archive(jobs, member_id=member, data=mastodon_archive())
    assert (view.connector, view.status, view.records_count) == ("archive", "ok", 3)
    assert view.next_sync_at is None  # uploads are never re-fetched by the scheduler
    again = await sync_jobs.import_archive(jobs, member_id=member, data=mastodon_archive(4))
    assert again.id == view.id
    assert again.records_count == 4
    await sync_jobs.import_archive(jobs, member_id=member, data=twitter_archive())
    assert await Record.filter(member_id=member).count() == 5
    assert await Connection.filter(member_id=member).count() == 1
    rows = await Record.all().values()
    assert not scan_rows(rows, "Toot number") and not scan_rows(rows, "social.example")


def slip(name: str) -> bytes:
    return make_zip({name: "x", "outbox.json": json.dumps({"orderedItems": []})})


def symlink_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        link = zipfile.ZipInfo("outbox.json")
        link.external_attr = (0o120777 << 16) | 0
        archive.writestr(link, "/etc/passwd")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        slip("../../etc/cron.d/evil"),
        slip("media/../../x"),
        slip("/etc/passwd"),
        slip("C:/Windows/evil.dll"),
        slip("..\\..\\evil.txt"),
        symlink_zip(),
    ],
    ids=["dotdot", "inner-dotdot", "absolute", "drive", "backslash", "symlink"],
)
async def test_archives_with_unsafe_member_names_are_refused(
    jobs: sync_jobs.Jobs, member: uuid.UUID, data: bytes
) -> None:
    with pytest.raises(SourceRejectedError) as caught:
        await sync_jobs.import_archive(jobs, member_id=member, data=data)
    assert (caught.value.code, caught.value.status) == ("unsafe_archive_member", 422)
    assert await Connection.filter(member_id=member).count() == 0
    assert await Record.all().count() == 0


async def test_a_zip_bomb_is_refused_from_its_headers(
    jobs: sync_jobs.Jobs, member: uuid.UUID
) -> None:
    bomb = make_zip({"outbox.json": b"\0" * (64 * 1024 * 1024)})
    assert len(bomb) < 200 * 1024
    with pytest.raises(SourceTooLargeError) as caught:
        await sync_jobs.import_archive(jobs, member_id=member, data=bomb)
    assert (caught.value.code, caught.value.status) == ("archive_too_large", 413)


async def test_an_archive_with_too_many_files_is_refused(
    jobs: sync_jobs.Jobs, member: uuid.UUID
) -> None:
    many = make_zip({f"f/{n}.txt": b"" for n in range(10_001)}, compression=zipfile.ZIP_STORED)
    with pytest.raises(SourceTooLargeError) as caught:
        await sync_jobs.import_archive(jobs, member_id=member, data=many)
    assert caught.value.code == "archive_too_large"


async def test_nested_archives_are_ignored_not_opened(
    jobs: sync_jobs.Jobs, member: uuid.UUID
) -> None:
    inner = mastodon_archive()
    with pytest.raises(SourceRejectedError) as caught:
        await sync_jobs.import_archive(
            jobs, member_id=member, data=make_zip({"export/outbox.json.zip": inner})
        )
    assert caught.value.code == "invalid_source"
    outer = make_zip({"nested.zip": inner, "outbox.json": json.dumps({"orderedItems": []})})
    view = await sync_jobs.import_archive(jobs, member_id=member, data=outer)
    assert view.records_count == 0


@pytest.mark.parametrize(
    "data",
    [b"not a zip at all", make_zip({"readme.txt": "hi"}), make_zip({"outbox.json": "{nope"})],
    ids=["not-zip", "no-known-file", "bad-json"],
)
async def test_unreadable_uploads_are_refused_with_invalid_source(
    jobs: sync_jobs.Jobs, member: uuid.UUID, data: bytes
) -> None:
    with pytest.raises(SourceRejectedError) as caught:
        await sync_jobs.import_archive(jobs, member_id=member, data=data)
    assert caught.value.code == "invalid_source"


async def test_a_bad_reupload_keeps_the_existing_archive_connection(
    jobs: sync_jobs.Jobs, member: uuid.UUID
) -> None:
    view = await sync_jobs.import_archive(jobs, member_id=member, data=mastodon_archive())
    with pytest.raises(SourceRejectedError):
        await sync_jobs.import_archive(jobs, member_id=member, data=slip("../x"))
    kept = await service.get_connection(
        vault=jobs.vault, registry=jobs.registry, member_id=member, connection_id=view.id
    )
    assert kept.records_count == 3
