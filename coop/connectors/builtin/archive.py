"""The `archive` connector: a ZIP export the member downloaded from Mastodon or X/Twitter.

Nothing is extracted to disk. Members are read in memory with `zipfile`, under caps that are
checked from the central directory first (count, declared sizes, names) and again while
reading (a forged header cannot lie its way past the byte counter): zip bombs, path traversal
and archives-in-archives are refused or ignored before any content is trusted.

- Mastodon: `outbox.json`, an ActivityPub OrderedCollection of `Create` activities of `Note`s
  (`replies.totalItems`, `likes.totalItems`, `shares.totalItems` when present).
- X/Twitter: `data/tweets.js`, `window.YTD.tweets.part0 = [...]` (favorite/retweet counts).
"""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

from coop.connectors import spec
from coop.connectors.builtin import plain_text, safe_url

MAX_MEMBERS = 10_000
MAX_TOTAL_BYTES = 1024 * 1024 * 1024  # declared, over every member
MAX_MEMBER_BYTES = 100 * 1024 * 1024  # the one file coop reads
MAX_RATIO = 200  # uncompressed / compressed, per member
BATCH_SIZE = 500
MAX_TEXT = 1000
WANTED = ("outbox.json", "data/tweets.js", "tweets.js", "data/tweet.js")
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


def read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """Read one member, counting real bytes: headers can lie, the counter cannot."""
    out = bytearray()
    with archive.open(info) as stream:
        while chunk := stream.read(64 * 1024):
            out.extend(chunk)
            if len(out) > min(limit, MAX_MEMBER_BYTES):
                raise _too_large("The archive expands to more than coop accepts.")
    return bytes(out)


def _pick(infos: Iterable[zipfile.ZipInfo]) -> zipfile.ZipInfo | None:
    by_name = {i.filename.lstrip("./"): i for i in infos if not i.is_dir()}
    for wanted in WANTED:
        for name, info in by_name.items():
            if name.lower().endswith(NESTED):
                continue  # archives inside the archive are ignored, never opened
            if name == wanted or name.endswith("/" + wanted):
                return info
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


def _iso(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def mastodon_records(data: bytes) -> list[spec.Record]:
    try:
        outbox = json.loads(data)
    except ValueError:
        raise spec.InvalidSourceError("outbox.json is not valid JSON.") from None
    items = outbox.get("orderedItems") if isinstance(outbox, dict) else None
    if not isinstance(items, list):
        raise spec.InvalidSourceError("outbox.json is not an ActivityPub collection.")
    records = []
    for activity in items:
        if not isinstance(activity, dict) or activity.get("type") != "Create":
            continue  # boosts (Announce) are other people's posts
        note = activity.get("object")
        if not isinstance(note, dict) or note.get("type") != "Note":
            continue
        when = _iso(note.get("published") or activity.get("published"))
        note_id = note.get("id") or activity.get("id")
        if when is None or not isinstance(note_id, str):
            continue
        text = plain_text(note.get("content"))
        records.append(
            spec.Record(
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
            )
        )
    return records


def _tweet_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parsedate_to_datetime(value).astimezone(UTC)
    except (TypeError, ValueError, IndexError):
        return _iso(value)


def _int(value: Any) -> int:
    try:
        return max(int(value), 0)
    except (TypeError, ValueError):
        return 0


def twitter_records(data: bytes) -> list[spec.Record]:
    text = data.decode("utf-8-sig", errors="replace")
    start = text.find("[")
    if not text.lstrip().startswith("window.YTD.") or start < 0:
        raise spec.InvalidSourceError("tweets.js is not an X/Twitter archive file.")
    try:
        items = json.loads(text[start:])
    except ValueError:
        raise spec.InvalidSourceError("tweets.js could not be read.") from None
    records = []
    for item in items if isinstance(items, list) else []:
        tweet = item.get("tweet", item) if isinstance(item, dict) else None
        if not isinstance(tweet, dict):
            continue
        tweet_id, when = (
            tweet.get("id_str") or tweet.get("id"),
            _tweet_time(tweet.get("created_at")),
        )
        full = tweet.get("full_text") or tweet.get("text") or ""
        if tweet_id is None or when is None or str(full).startswith("RT @"):
            continue  # retweets are other people's posts
        body = plain_text(str(full))
        records.append(
            spec.Record(
                kind=spec.POST,
                external_id=f"x:{tweet_id}",
                occurred_at=when,
                counts={
                    "favourites": _int(tweet.get("favorite_count")),
                    "reblogs": _int(tweet.get("retweet_count")),
                },
                text=body if body and len(body) <= MAX_TEXT else None,
            )
        )
    return records


def read_archive(upload: bytes) -> list[spec.Record]:
    """Every post in a Mastodon or X/Twitter archive, oldest first; refuses unsafe archives."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(upload))
    except (zipfile.BadZipFile, ValueError):
        raise spec.InvalidSourceError("That file is not a ZIP archive.") from None
    with archive:
        infos = check_archive(archive)
        chosen = _pick(infos)
        if chosen is None:
            raise spec.InvalidSourceError(
                "No outbox.json (Mastodon) or data/tweets.js (X/Twitter) in that archive."
            )
        try:
            data = read_member(archive, chosen, MAX_MEMBER_BYTES)
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError):
            raise spec.InvalidSourceError("The archive could not be read.") from None
    name = chosen.filename.rsplit("/", 1)[-1]
    records = mastodon_records(data) if name == "outbox.json" else twitter_records(data)
    records.sort(key=lambda r: (r.occurred_at, r.external_id))
    return records


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
        records = await asyncio.to_thread(read_archive, ctx.upload)
        for start in range(0, len(records), BATCH_SIZE):
            chunk = records[start : start + BATCH_SIZE]
            yield spec.SyncBatch(records=chunk, cursor=cursor)


__all__ = ["ArchiveConnector", "check_name", "read_archive"]
