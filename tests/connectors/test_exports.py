"""The facebook, instagram and linkedin upload connectors on exports built from the documented
formats: every layout, Meta's escaping, what is never read, and hostile ZIPs."""

from __future__ import annotations

import json
import tracemalloc
import uuid
from datetime import UTC, datetime

import pytest

from coop.connectors import spec
from coop.connectors.builtin.exports import ExportConnector, meta_text
from coop.connectors.builtin.facebook import FacebookConnector
from coop.connectors.builtin.instagram import InstagramConnector
from coop.connectors.builtin.linkedin import LinkedInConnector
from coop.connectors.models import Connection, Record
from coop.connectors.registry import validate
from coop.errors import SourceRejectedError, SourceTooLargeError
from coop.jobs import sync as sync_jobs
from tests.connectors.exports import (
    FRIEND,
    NEVER,
    facebook_export,
    instagram_export,
    linkedin_export,
    make_zip,
    meta_json,
)
from tests.connectors.helpers import scan_rows


def read(connector: ExportConnector, upload: bytes) -> list[spec.Record]:
    return sorted(connector.records(upload), key=lambda r: (r.occurred_at, r.external_id))


def leaks(records: list[spec.Record], *needles: str) -> list[str]:
    dumped = json.dumps([vars(r) for r in records], default=str, ensure_ascii=False)
    return [n for n in needles if n in dumped]


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("caf\u00c3\u00a9", "café"),
        ("\u00e2\u0098\u0080 \u00f0\u009f\u0098\u0080", "☀ 😀"),
        ("plain ascii", "plain ascii"),
        ("déjà vu", "déjà vu"),  # real Latin-1 text does not round-trip: kept
        ("日本語", "日本語"),  # beyond U+00FF: kept
    ],
)
def test_meta_text_undoes_metas_byte_escaping_only_when_it_round_trips(raw: str, text: str) -> None:
    assert meta_text(raw) == text


@pytest.mark.parametrize("connector", [FacebookConnector, InstagramConnector, LinkedInConnector])
def test_each_export_connector_meets_the_contract_and_says_what_it_never_reads(
    connector: type[ExportConnector],
) -> None:
    made = connector()
    validate(made)
    assert made.auth == "upload" and made.reads == (spec.POST, spec.ACTIVITY)
    promises = " ".join(made.never_reads)
    assert "messages" in promises and "other people" in promises


# -- Facebook --------------------------------------------------------------------------------


def test_a_facebook_export_yields_own_posts_decoded_and_comment_dates_only() -> None:
    records = read(FacebookConnector(), facebook_export("2024"))

    posts = [r for r in records if r.kind == spec.POST]
    assert [p.text for p in posts] == ["Un café au soleil ☀ 😀", "Read this", None]
    assert [p.occurred_at for p in posts] == [
        datetime(2025, 12, d, 12, tzinfo=UTC) for d in (1, 8, 15)
    ]
    assert [dict(p.counts) for p in posts] == [
        {"photos": 1},
        {"links": 1, "videos": 1},
        {"photos": 1},
    ]
    assert all(p.external_id.startswith("facebook:post:") for p in posts)
    [comment] = [r for r in records if r.kind == spec.ACTIVITY]
    assert (comment.title, comment.text, comment.url) == ("comment", None, None)
    assert leaks(records, NEVER, FRIEND, "Alice") == []


@pytest.mark.parametrize("layout", ["2022", "2020", "2018"])
def test_older_facebook_layouts_give_the_same_records(layout: str) -> None:
    current = read(FacebookConnector(), facebook_export("2024"))

    older = read(FacebookConnector(), facebook_export(layout))

    assert older == current  # same ids too: re-uploading an older export adds nothing


def test_an_html_facebook_export_says_to_choose_json() -> None:
    html = make_zip({"your_facebook_activity/posts/your_posts_1.html": "<html></html>"})
    with pytest.raises(spec.InvalidSourceError) as caught:
        read(FacebookConnector(), html)
    assert "JSON format" in str(caught.value)


# -- Instagram -------------------------------------------------------------------------------


def test_an_instagram_export_yields_posts_and_reels_with_captions_and_comment_dates() -> None:
    records = read(InstagramConnector(), instagram_export("2024"))

    posts = [r for r in records if r.kind == spec.POST]
    assert [(p.external_id, p.text, dict(p.counts)) for p in posts] == [
        ("instagram:post:111_carousel_n.jpg", "Sommer in Zürich 🌞", {"photos": 1, "videos": 1}),
        ("instagram:post:222_single_n.jpg", "Ein Foto", {"photos": 1}),
        ("instagram:reel:333_reel_n.mp4", "Mein Reel", {"videos": 1}),
    ]
    assert posts[0].occurred_at == datetime(2025, 11, 24, 16, tzinfo=UTC)
    [comment] = [r for r in records if r.kind == spec.ACTIVITY]
    assert comment.occurred_at == datetime(2025, 12, 7, 9, 33, 20, tzinfo=UTC)
    assert comment.title == "comment" and comment.text is None
    assert leaks(records, NEVER, "bob.friend") == []


def test_the_2022_instagram_layout_gives_the_same_records() -> None:
    assert read(InstagramConnector(), instagram_export("2022")) == read(
        InstagramConnector(), instagram_export("2024")
    )


def test_the_2019_instagram_layout_gives_the_same_posts_under_the_same_ids() -> None:
    current = {r.external_id: r for r in read(InstagramConnector(), instagram_export("2024"))}

    old = read(InstagramConnector(), instagram_export("2019"))

    for record in old:
        if record.kind == spec.POST:
            assert record.text == current[record.external_id].text
            assert record.occurred_at == current[record.external_id].occurred_at
    assert {r.kind for r in old} == {spec.POST, spec.ACTIVITY}
    assert leaks(old, NEVER, "bob.friend") == []


# -- LinkedIn --------------------------------------------------------------------------------


@pytest.mark.parametrize("old", [False, True], ids=["current", "without-visibility"])
def test_a_linkedin_export_yields_shares_and_activity_dates(old: bool) -> None:
    records = read(LinkedInConnector(), linkedin_export(old=old))

    posts = [r for r in records if r.kind == spec.POST]
    assert [p.external_id for p in posts] == [
        "linkedin:urn:li:share:7100000000000000001",
        "linkedin:urn:li:ugcpost:7100000000000000002",
    ]
    assert posts[0].text == 'Wir stellen ein!\nZwei Zeilen, mit "Anführungszeichen", und Kommas.'
    assert posts[0].occurred_at == datetime(2025, 11, 3, 8, 15, tzinfo=UTC)
    assert dict(posts[1].counts) == {"media": 1, "links": 1}
    assert posts[1].url is not None and posts[1].url.startswith("https://www.linkedin.com/")
    activity = [(r.title, r.text, r.url) for r in records if r.kind == spec.ACTIVITY]
    assert activity == [("comment", None, None), ("reaction", None, None)]
    assert leaks(records, NEVER, FRIEND, "urn:li:activity") == []


def test_a_csv_line_past_the_bound_is_too_large() -> None:
    huge = "Date,ShareLink,ShareCommentary\n2025-11-03 08:15:00,x," + "a" * (2 * 1024 * 1024)
    with pytest.raises(spec.InvalidSourceError) as caught:
        read(LinkedInConnector(), make_zip({"Shares.csv": huge}))
    assert caught.value.code == "archive_too_large"


# -- the memory bound -----------------------------------------------------------------------


def _peak_while_checking(connector: ExportConnector, upload: bytes) -> tuple[int, int]:
    tracemalloc.start()
    try:
        count = connector.check(upload)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return count, peak


def test_a_large_facebook_posts_file_is_read_within_the_memory_bound() -> None:
    posts = [
        {"timestamp": 1_700_000_000 + n, "data": [{"post": f"Post {n} ☀ " + "x" * 300}]}
        for n in range(25_000)
    ]
    text = meta_json(posts)
    upload = make_zip({"your_facebook_activity/posts/your_posts_1.json": text})
    del posts

    count, peak = _peak_while_checking(FacebookConnector(), upload)

    assert count == 25_000
    assert len(text) > 4 * 2 * 1024 * 1024  # parsed whole, it would take several times this
    assert peak < 2 * 1024 * 1024


def test_a_large_linkedin_csv_is_read_within_the_memory_bound() -> None:
    row = '2025-11-03 08:15:00,https://www.linkedin.com/feed/update/urn:li:share:{n},"{text}"\n'
    body = "Date,ShareLink,ShareCommentary\n" + "".join(
        row.format(n=n, text=f"line one {n}\nline two " + "y" * 300) for n in range(25_000)
    )
    upload = make_zip({"Shares.csv": body})

    count, peak = _peak_while_checking(LinkedInConnector(), upload)

    assert count == 25_000
    assert len(body) > 4 * 2 * 1024 * 1024
    assert peak < 2 * 1024 * 1024


# -- through the flow: storage, re-uploads, hostile ZIPs ---------------------------------------


async def test_uploading_an_export_stores_sealed_records_and_reuploading_adds_nothing(
    jobs: sync_jobs.Jobs, member: uuid.UUID
) -> None:
    view = await sync_jobs.import_archive(
        jobs, member_id=member, data=facebook_export("2024"), connector="facebook"
    )
    assert (view.connector, view.status, view.records_count) == ("facebook", "ok", 4)

    again = await sync_jobs.import_archive(
        jobs, member_id=member, data=facebook_export("2018"), connector="facebook"
    )
    assert again.id == view.id and again.records_count == 4
    await sync_jobs.import_archive(
        jobs, member_id=member, data=instagram_export(), connector="instagram"
    )
    await sync_jobs.import_archive(
        jobs, member_id=member, data=linkedin_export(), connector="linkedin"
    )
    names = await Connection.filter(member_id=member).values_list("connector", flat=True)
    assert sorted(names) == ["facebook", "instagram", "linkedin"]
    assert await Record.filter(member_id=member).count() == 4 + 4 + 4
    rows = await Record.all().values()
    assert not scan_rows(rows, "soleil") and not scan_rows(rows, "Zürich")


def _slip(name: str) -> bytes:
    return make_zip({name: "x", "posts/your_posts_1.json": "[]"})


def _bomb() -> bytes:
    return make_zip({"posts/your_posts_1.json": b" " * (64 * 1024 * 1024)})


@pytest.mark.parametrize(
    ("data", "error", "code"),
    [
        (_slip("../../etc/cron.d/evil"), SourceRejectedError, "unsafe_archive_member"),
        (_slip("posts/..\\..\\evil"), SourceRejectedError, "unsafe_archive_member"),
        (_bomb(), SourceTooLargeError, "archive_too_large"),
        (make_zip({"posts/your_posts_1.json": "[{nope"}), SourceRejectedError, "invalid_source"),
        (make_zip({"readme.txt": "hi"}), SourceRejectedError, "invalid_source"),
        (b"not a zip", SourceRejectedError, "invalid_source"),
        (
            make_zip({"posts/your_posts_1.json": "[" * 100 + "]" * 100}),
            SourceTooLargeError,
            "archive_too_large",
        ),
    ],
    ids=["slip", "backslash", "bomb", "bad-json", "no-known-file", "not-zip", "deep"],
)
async def test_hostile_or_broken_exports_are_refused_and_store_nothing(
    jobs: sync_jobs.Jobs, member: uuid.UUID, data: bytes, error: type[Exception], code: str
) -> None:
    with pytest.raises(error) as caught:
        await sync_jobs.import_archive(jobs, member_id=member, data=data, connector="facebook")
    assert caught.value.code == code  # type: ignore[attr-defined]
    assert await Connection.filter(member_id=member).count() == 0
    assert await Record.all().count() == 0


async def test_exports_inside_the_export_are_ignored_not_opened(
    jobs: sync_jobs.Jobs, member: uuid.UUID
) -> None:
    inner = facebook_export()
    outer = make_zip({"inner.zip": inner, "posts/your_posts_1.json": meta_json([])})

    view = await sync_jobs.import_archive(jobs, member_id=member, data=outer, connector="facebook")

    assert view.records_count == 0


async def test_a_connector_that_takes_no_uploads_refuses_one(
    jobs: sync_jobs.Jobs, member: uuid.UUID
) -> None:
    with pytest.raises(SourceRejectedError):
        await sync_jobs.import_archive(
            jobs, member_id=member, data=facebook_export(), connector="feed"
        )
