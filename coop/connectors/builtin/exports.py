"""Shared by the "download your information" upload connectors (facebook, instagram, linkedin).

An export is a ZIP of many files; each connector names the few it reads (`Part`: a file-name
pattern and how to stream its entries into records) and never opens any other file: messages,
contacts, friends and followers lists, ad interests and location history are in the same ZIP
and are never read. The protections are the archive connector's: the central directory is
checked before anything is read (archive.check_archive: caps, ratios, names, symlinks),
archives inside the archive are ignored, and each chosen file is streamed within the memory
bound of archive_io (JSON through `iter_json_items`, CSV line by line here).
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import hashlib
import itertools
import re
import zipfile
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from coop.connectors import spec
from coop.connectors.builtin import archive, archive_io

BATCH_SIZE = 500
MAX_TEXT = 3000
MAX_FILES = 200  # chosen files per export (posts_1.json … posts_N.json)

# Streams one member of the ZIP into records (opening it through archive_io.open_member).
Reader = Callable[[zipfile.ZipFile, zipfile.ZipInfo], Iterator[spec.Record]]


@dataclass(frozen=True)
class Part:
    """One kind of file an export holds: a regular expression on its path inside the ZIP
    (lower-cased, `/`-separated) and the reader that streams its records."""

    pattern: re.Pattern[str]
    read: Reader


def meta_text(value: Any) -> str | None:
    """Text from Meta's JSON exports, repaired. Facebook and Instagram write each UTF-8 byte of
    non-ASCII text as its own escape (`"caf\\u00c3\\u00a9"` for "café"): such a string
    encodes to latin-1 and decodes as UTF-8. Anything that does not round-trip (real Latin-1
    text, or characters beyond U+00FF) is already right and kept as it is."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def clip(text: str | None) -> str | None:
    text = (text or "").strip()
    return text[:MAX_TEXT] if text else None


def epoch(value: Any) -> datetime | None:
    """Seconds since the epoch (Meta's `timestamp`, `creation_timestamp`) as a UTC time."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def digest(*parts: Any) -> str:
    """A short stable id for items an export gives no id: same content, same id."""
    joined = "\x00".join("" if p is None else str(p) for p in parts)
    return hashlib.sha256(joined.encode("utf-8", "surrogatepass")).hexdigest()[:20]


def json_lists(*paths: tuple[str, ...], to_record: Callable[[Any], spec.Record | None]) -> Reader:
    """A reader of the JSON lists at `paths` (the layouts a file has had over the years: `()`
    for a top-level list). Paths a file does not hold are skipped."""

    def read(zipped: zipfile.ZipFile, info: zipfile.ZipInfo) -> Iterator[spec.Record]:
        for path in paths:  # each layout is one bounded pass over the file
            with archive_io.open_member(zipped, info) as stream:
                items = archive_io.iter_json_items(stream, path, name=_name(info), required=False)
                for item in items:
                    record = to_record(item)
                    if record is not None:
                        yield record

    return read


def _name(info: zipfile.ZipInfo) -> str:
    return info.filename.rsplit("/", 1)[-1]


def csv_rows(to_record: Callable[[dict[str, str]], spec.Record | None]) -> Reader:
    """A reader of a CSV file with a header row, one row at a time (quoted fields may span
    lines; a line longer than archive_io.MAX_TOKEN_BYTES is refused)."""

    def read(zipped: zipfile.ZipFile, info: zipfile.ZipInfo) -> Iterator[spec.Record]:
        name = _name(info)
        with archive_io.open_member(zipped, info) as stream:
            try:
                for row in csv.DictReader(_lines(stream, name), strict=False):
                    fields = {str(k).strip(): (v or "") for k, v in row.items() if k}
                    record = to_record(fields)
                    if record is not None:
                        yield record
            except csv.Error:
                raise spec.InvalidSourceError(f"{name} is not a readable CSV file.") from None

    return read


def _lines(stream: Any, name: str) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
    pending = ""
    while chunk := archive_io.read_chunk(stream):
        pending += decoder.decode(chunk)
        *lines, pending = pending.split("\n")
        yield from (line + "\n" for line in lines)
        if len(pending) > archive_io.MAX_TOKEN_BYTES:
            raise archive_io.too_large(f"{name} holds a line longer than coop accepts.")
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending


def _chosen(infos: Iterable[zipfile.ZipInfo], parts: Iterable[Part]) -> list[tuple[str, Part]]:
    found = []
    for info in infos:
        name = info.filename.lstrip("./").lower()
        if info.is_dir() or name.endswith(archive.NESTED):
            continue  # archives inside the archive are ignored, never opened
        part = next((p for p in parts if p.pattern.search(name)), None)
        if part is not None:
            found.append((info.filename, part))
    if len(found) > MAX_FILES:
        raise archive_io.too_large("The export holds more files to read than coop accepts.")
    return sorted(found, key=lambda f: f[0])


def iter_export(upload: bytes, parts: tuple[Part, ...], missing: str) -> Iterator[spec.Record]:
    """Every record the chosen files of an export hold, streamed; unsafe exports are refused
    before any content is read, and an export holding none of the files with `missing`."""
    with archive.open_zip(upload) as zipped:
        chosen = _chosen(archive.check_archive(zipped), parts)
        if not chosen:
            raise spec.InvalidSourceError(missing)
        for filename, part in chosen:
            yield from part.read(zipped, zipped.getinfo(filename))


class ExportConnector:
    """Base of the export upload connectors: subclasses set the catalogue attributes, `parts`
    and `missing` (the sentence shown when the ZIP holds none of the files)."""

    api_version: ClassVar[int] = spec.API_VERSION
    auth: ClassVar[spec.AuthMethod] = "upload"
    reads: ClassVar[tuple[str, ...]] = (spec.POST, spec.ACTIVITY)
    parts: ClassVar[tuple[Part, ...]] = ()
    missing: ClassVar[str] = "That archive holds none of the files coop reads."

    def records(self, upload: bytes) -> Iterator[spec.Record]:
        return iter_export(upload, self.parts, self.missing)

    def check(self, upload: bytes) -> int:
        """Read the whole export once, keeping nothing: refusals happen before any batch."""
        return sum(1 for _ in self.records(upload))

    async def sync(
        self, ctx: spec.SyncContext, cursor: str | None
    ) -> AsyncIterator[spec.SyncBatch]:
        if ctx.upload is None:
            return  # nothing new until the member uploads another export
        await asyncio.to_thread(self.check, ctx.upload)
        records = self.records(ctx.upload)
        while batch := await asyncio.to_thread(_next_batch, records):
            yield spec.SyncBatch(records=batch, cursor=cursor)


def _next_batch(records: Iterator[spec.Record]) -> list[spec.Record]:
    return list(itertools.islice(records, BATCH_SIZE))


__all__ = [
    "ExportConnector",
    "Part",
    "clip",
    "csv_rows",
    "digest",
    "epoch",
    "iter_export",
    "json_lists",
    "meta_text",
]
