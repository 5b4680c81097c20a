"""The `archive` connector: a ZIP export the member downloaded from Mastodon or X/Twitter.

Nothing is extracted to disk. The central directory is checked first (count, declared sizes,
names, ratios): zip bombs, path traversal, symlinks and archives-in-archives are refused or
ignored before any content is read. Then the one member file that holds the posts is parsed as
a stream (coop.connectors.builtin.archive_io: bounded bytes, tokens, items and depth), so the
memory an upload takes does not grow with the size or compression ratio of the archive.

- Mastodon: `outbox.json`, an ActivityPub OrderedCollection of `Create` activities of `Note`s
  (`replies.totalItems`, `likes.totalItems`, `shares.totalItems` when present).
- X/Twitter: `data/tweets.js`, `window.YTD.tweets.part0 = [...]` (favorite/retweet counts).

A new kind of archive is one more `Format` in FORMATS.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import zipfile
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

from coop.connectors import spec
from coop.connectors.builtin import plain_text, safe_url
from coop.connectors.builtin.archive_io import MAX_MEMBER_BYTES, iter_json_items, open_member

MAX_MEMBERS = 10_000
MAX_TOTAL_BYTES = 1024 * 1024 * 1024  # declared, over every member
MAX_RATIO = 200  # uncompressed / compressed, per member
BATCH_SIZE = 500
MAX_TEXT = 1000
NESTED = (".zip", ".tar", ".gz", ".tgz", ".7z", ".rar", ".bz2", ".xz")


def _unsafe(message: str) -> spec.InvalidSourceError:
    return spec.InvalidSourceError(message, code="unsafe_archive_member")


def _too_large(message: str) -> spec.InvalidSourceError:
    return spec.InvalidSourceError(message, code="archive_too_large")


def check_name(name: str) -> None:
    """Refuse absolute paths, drive letters, backslashes and `..` components (zip slip)."""
    if not name or "\\" in name or name.startswith("/") or "\x00" in name:
        raise _unsafe("The archive contains an unsafe file name.")
    if len(name) > 1 and name[1] == ":":
        raise _unsafe("The archive contains an unsafe file name.")
    if any(part == ".." for part in name.split("/")):
        raise _unsafe("The archive contains an unsafe file name.")


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return (info.external_attr >> 16) & 0o170000 == 0o120000


def check_archive(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """Validate the whole central directory before reading anything."""
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise _too_large(f"The archive holds more than {MAX_MEMBERS} files.")
    total = 0
    for info in infos:
        check_name(info.filename)
        if _is_symlink(info):
            raise _unsafe("The archive contains a symbolic link.")
        total += info.file_size
        if info.file_size > MAX_MEMBER_BYTES or total > MAX_TOTAL_BYTES:
            raise _too_large("The archive expands to more than coop accepts.")
        if info.file_size > 1024 * 1024 and info.file_size / max(info.compress_size, 1) > MAX_RATIO:
            raise _too_large("The archive is compressed suspiciously well (a zip bomb?).")
    return infos


def _pick(infos: Iterable[zipfile.ZipInfo]) -> tuple[zipfile.ZipInfo, Format] | None:
    by_name = {i.filename.lstrip("./"): i for i in infos if not i.is_dir()}
    for fmt in FORMATS:
        for wanted in fmt.names:
            for name, info in by_name.items():
                if name.lower().endswith(NESTED):
                    continue  # archives inside the archive are ignored, never opened
                if name == wanted or name.endswith("/" + wanted):
                    return info, fmt
    return None


def _total(node: Any) -> int:
    if isinstance(node, dict):
        value = node.get("totalItems")
        if isinstance(value, int) and value >= 0:
            return value
        first = node.get("first")
        if isinstance(first, dict):
            return _total(first)
        items = node.get("items") or node.get("orderedItems")
        if isinstance(items, list):
            return len(items)
    if isinstance(node, list):
        return len(node)
    return 0


def iso_time(value: Any) -> datetime | None:
    """An ISO 8601 time (`Z`, an offset, or none: UTC) or None."""
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def mastodon_record(activity: Any) -> spec.Record | None:
    """The member's own post in one outbox activity, or None (boosts, other objects)."""
    if not isinstance(activity, dict) or activity.get("type") != "Create":
        return None  # boosts (Announce) are other people's posts
    note = activity.get("object")
    if not isinstance(note, dict) or note.get("type") != "Note":
        return None
    when = iso_time(note.get("published") or activity.get("published"))
    note_id = note.get("id") or activity.get("id")
    if when is None or not isinstance(note_id, str):
        return None
    text = plain_text(note.get("content"))
    return spec.Record(
        kind=spec.POST,
        external_id="mastodon:" + note_id,
        occurred_at=when,
        counts={
            "replies": _total(note.get("replies")),
            "favourites": _total(note.get("likes")),
            "reblogs": _total(note.get("shares")),
        },
        text=text if text and len(text) <= MAX_TEXT else None,
        url=safe_url(note.get("url") or note_id),
        network="mastodon",
    )


def _tweet_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parsedate_to_datetime(value).astimezone(UTC)
    except (TypeError, ValueError, IndexError):
        return iso_time(value)


def _int(value: Any) -> int:
    try:
        return max(int(value), 0)
    except (TypeError, ValueError):
        return 0


def twitter_record(item: Any) -> spec.Record | None:
    """The member's own tweet in one `tweets.js` entry, or None (retweets, broken entries)."""
    tweet = item.get("tweet", item) if isinstance(item, dict) else None
    if not isinstance(tweet, dict):
        return None
    tweet_id, when = tweet.get("id_str") or tweet.get("id"), _tweet_time(tweet.get("created_at"))
    full = tweet.get("full_text") or tweet.get("text") or ""
    if tweet_id is None or when is None or str(full).startswith("RT @"):
        return None  # retweets are other people's posts
    body = plain_text(str(full))
    return spec.Record(
        kind=spec.POST,
        external_id=f"x:{tweet_id}",
        occurred_at=when,
        counts={
            "favourites": _int(tweet.get("favorite_count")),
            "reblogs": _int(tweet.get("retweet_count")),
        },
        text=body if body and len(body) <= MAX_TEXT else None,
        network="x",
    )


@dataclass(frozen=True)
class Format:
    """One kind of archive: the member file that holds the posts, where the list of posts is
    in it (see archive_io.iter_json_items) and how one entry becomes a record."""

    names: tuple[str, ...]  # the file's path in the archive (also matched under a folder)
    path: tuple[str, ...]
    to_record: Callable[[Any], spec.Record | None]
    after_prefix: bool = False  # `window.YTD.… = [...]` files


FORMATS: tuple[Format, ...] = (
    Format(("outbox.json",), ("orderedItems",), mastodon_record),
    Format(("data/tweets.js", "tweets.js", "data/tweet.js"), (), twitter_record, True),
)


def open_zip(upload: bytes) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(upload))
    except (zipfile.BadZipFile, ValueError):
        raise spec.InvalidSourceError("That file is not a ZIP archive.") from None


def iter_archive(upload: bytes) -> Iterator[spec.Record]:
    """Every post in a Mastodon or X/Twitter archive, in file order, read as a stream (the
    memory bound of archive_io); refuses unsafe archives before reading any content."""
    with open_zip(upload) as archive:
        chosen = _pick(check_archive(archive))
        if chosen is None:
            raise spec.InvalidSourceError(
                "No outbox.json (Mastodon) or data/tweets.js (X/Twitter) in that archive."
            )
        info, fmt = chosen
        label = info.filename.rsplit("/", 1)[-1]
        with open_member(archive, info) as stream:
            items = iter_json_items(stream, fmt.path, name=label, after_prefix=fmt.after_prefix)
            for item in items:
                record = fmt.to_record(item)
                if record is not None:
                    yield record


def read_archive(upload: bytes) -> list[spec.Record]:
    """All posts of `iter_archive`, oldest first (tests and small archives)."""
    return sorted(iter_archive(upload), key=lambda r: (r.occurred_at, r.external_id))


def count_posts(upload: bytes) -> int:
    """Read the whole archive once without keeping anything: refusals happen here."""
    return sum(1 for _ in iter_archive(upload))


def _next_batch(records: Iterator[spec.Record]) -> list[spec.Record]:
    return list(itertools.islice(records, BATCH_SIZE))


class ArchiveConnector:
    api_version: ClassVar[int] = spec.API_VERSION
    name: ClassVar[str] = "archive"
    title: ClassVar[str] = "Archive upload (Mastodon or X/Twitter)"
    description: ClassVar[str] = (
        "Reads an archive you downloaded yourself from Mastodon (outbox.json) or X/Twitter "
        "(tweets.js): your own posts with their reply, favourite and boost counts."
    )
    reads: ClassVar[tuple[str, ...]] = (spec.POST,)
    never_reads: ClassVar[tuple[str, ...]] = (
        "direct messages, followers, following or block lists in the archive",
        "media files, and posts of other people you boosted or retweeted",
        "who replied to you or liked your posts (only how many)",
    )
    auth: ClassVar[spec.AuthMethod] = "upload"

    async def sync(
        self, ctx: spec.SyncContext, cursor: str | None
    ) -> AsyncIterator[spec.SyncBatch]:
        if ctx.upload is None:
            return  # nothing new until the member uploads another archive
        # Two passes over the stream: the first checks everything and keeps nothing, so a
        # refused archive stores nothing; the second hands out batches as it reads.
        await asyncio.to_thread(count_posts, ctx.upload)
        records = iter_archive(ctx.upload)
        while batch := await asyncio.to_thread(_next_batch, records):
            yield spec.SyncBatch(records=batch, cursor=cursor)


__all__ = [
    "FORMATS",
    "ArchiveConnector",
    "Format",
    "check_name",
    "iso_time",
    "iter_archive",
    "open_zip",
    "read_archive",
]
