"""Bounded archive reading (issue 12 part 4): memory does not follow the archive's size.

Generated families of hostile member files: one huge item, one huge token, deep nesting,
a refusal after several batches' worth of good posts; and a large archive read within a
memory bound measured with tracemalloc (allocations counted, not time).
"""

from __future__ import annotations

import io
import json
import tracemalloc
import uuid
import zipfile

import pytest

from coop.connectors.builtin import archive_io
from coop.connectors.builtin.archive import BATCH_SIZE, count_posts, read_archive
from coop.connectors.models import Connection, Record
from coop.connectors.spec import InvalidSourceError
from coop.errors import SourceRejectedError, SourceTooLargeError
from coop.jobs import sync as sync_jobs
from tests.connectors.test_archive import make_zip, note


def outbox_zip(items: list[object] | str, **extra: object) -> bytes:
    if isinstance(items, str):
        return make_zip({"outbox.json": items})
    return make_zip({"outbox.json": json.dumps({**extra, "orderedItems": items})})


def items_of(text: bytes, path: tuple[str, ...] = ()) -> list[object]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("f.json", text)
    with (
        zipfile.ZipFile(buffer) as archive,
        archive_io.open_member(archive, archive.getinfo("f.json")) as stream,
    ):
        return list(archive_io.iter_json_items(stream, path, name="f.json"))


@pytest.mark.parametrize(
    "text,path,expected",
    [
        (b"[1, 2.5, null]", (), [1, 2.5, None]),
        (b'{"a": {"b": [{"x": [1]}, "y"]}, "b": [9]}', ("a", "b"), [{"x": [1]}, "y"]),
        (b'{"skip": [[1], {"b": [7]}], "b": [[], {}]}', ("b",), [[], {}]),
        (b'{"b": []}', ("b",), []),
    ],
)
def test_items_are_read_from_the_array_at_the_path_only(
    text: bytes, path: tuple[str, ...], expected: list[object]
) -> None:
    assert items_of(text, path) == expected


@pytest.mark.parametrize("text", [b'{"other": []}', b"[1, 2]", b"{}"])
def test_a_document_without_the_array_is_refused(text: bytes) -> None:
    with pytest.raises(InvalidSourceError) as caught:
        items_of(text, ("orderedItems",))
    assert caught.value.code == "invalid_source"


def _huge_item(n: int) -> list[object]:
    return [{"type": "Create", "object": {"content": "x" * 1024}, "pad": list(range(n))}]


def _huge_string(n: int) -> list[object]:
    return [{"type": "Create", "object": {"content": "x" * n}}]


def _many_keys(n: int) -> list[object]:
    return [{f"k{i}": i for i in range(n // 16)}]


@pytest.mark.parametrize("scale", [1, 2, 4])
@pytest.mark.parametrize("shape", [_huge_item, _huge_string, _many_keys])
def test_an_item_past_the_item_budget_is_too_large(shape: object, scale: int) -> None:
    size = archive_io.MAX_ITEM_BYTES // 8 * scale + archive_io.MAX_ITEM_BYTES
    assert callable(shape)
    with pytest.raises(InvalidSourceError) as caught:
        read_archive(outbox_zip(shape(size)))
    assert caught.value.code == "archive_too_large"


@pytest.mark.parametrize("where", ["@context", "orderedItems"])
def test_a_token_past_the_token_bound_is_too_large_even_outside_the_items(where: str) -> None:
    big = "y" * (archive_io.MAX_TOKEN_BYTES + archive_io.CHUNK * 2)
    document = {"@context": big} if where == "@context" else {"orderedItems": [big]}
    with pytest.raises(InvalidSourceError) as caught:
        read_archive(outbox_zip(json.dumps(document)))
    assert caught.value.code == "archive_too_large"


@pytest.mark.parametrize("depth", [archive_io.MAX_DEPTH + 1, 1000, 100_000])
@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_deep_nesting_is_too_large_not_a_recursion_error(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    nested = opener * depth + "1" + closer * depth
    for text in (nested, '{"orderedItems": [' + nested + "]}"):
        with pytest.raises(InvalidSourceError) as caught:
            read_archive(outbox_zip(text))
        assert caught.value.code == "archive_too_large"


def test_a_truncated_document_is_invalid_json() -> None:
    text = json.dumps({"orderedItems": [note(1), note(2)]})[:-20]
    with pytest.raises(InvalidSourceError) as caught:
        read_archive(outbox_zip(text))
    assert (caught.value.code, str(caught.value)) == (
        "invalid_source",
        "outbox.json is not valid JSON.",
    )


def test_many_small_items_pass_whatever_their_total() -> None:
    count = archive_io.MAX_ITEM_BYTES // 256  # several times the one-item budget in total
    assert count_posts(outbox_zip([note(1 + n % 28) for n in range(count)])) == count


def test_reading_a_large_outbox_holds_a_bounded_fraction_of_it() -> None:
    items = [
        {**note(1 + n % 28), "object": {**note(1 + n % 28)["object"], "id": f"n{n}"}}  # type: ignore[dict-item]
        for n in range(30_000)
    ]
    text = json.dumps({"orderedItems": items}).encode()
    upload = make_zip({"outbox.json": text})
    del items
    tracemalloc.start()
    try:
        assert count_posts(upload) == 30_000
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The whole outbox parsed as one tree takes several times its text; the stream holds a
    # chunk, a token and one item at a time.
    assert len(text) > 4 * 2 * 1024 * 1024
    assert peak < 2 * 1024 * 1024


async def test_a_refusal_after_many_batches_of_good_posts_stores_nothing(
    jobs: sync_jobs.Jobs, member: uuid.UUID
) -> None:
    items: list[object] = [note(1 + n % 28) | {"id": str(n)} for n in range(BATCH_SIZE * 3)]
    for n, item in enumerate(items):
        item["object"] = {**item["object"], "id": f"https://social.example/s/{n}"}  # type: ignore[index]
    items.append({"type": "Create", "object": {"content": "z" * archive_io.MAX_ITEM_BYTES}})
    with pytest.raises(SourceTooLargeError) as caught:
        await sync_jobs.import_archive(jobs, member_id=member, data=outbox_zip(items))
    assert (caught.value.code, caught.value.status) == ("archive_too_large", 413)
    assert await Record.all().count() == 0
    assert await Connection.filter(member_id=member).count() == 0
    items.pop()
    view = await sync_jobs.import_archive(jobs, member_id=member, data=outbox_zip(items))
    assert view.records_count == BATCH_SIZE * 3


async def test_a_bad_twitter_prefix_is_refused(jobs: sync_jobs.Jobs, member: uuid.UUID) -> None:
    data = make_zip({"data/tweets.js": "alert(1); " + "[" * 10})
    with pytest.raises(SourceRejectedError) as caught:
        await sync_jobs.import_archive(jobs, member_id=member, data=data)
    assert caught.value.code == "invalid_source"
