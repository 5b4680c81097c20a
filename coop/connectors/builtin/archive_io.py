"""Bounded reading of archive members: the memory bound every archive parser relies on.

An uploaded ZIP may expand to far more than it weighs, and one JSON file in it may hold a
hundred megabytes. Parsers never hold a member file, or its parsed tree, in memory; they use:

- `open_member(archive, info)`: a file-like reader of one member that counts the bytes it
  really decompresses (a forged header cannot lie past it) and raises `archive_too_large`
  past `MAX_MEMBER_BYTES`;
- `iter_json_items(stream, path)`: the items of ONE JSON array inside that stream (e.g. the
  `orderedItems` of a Mastodon outbox, or the top-level array of an X/Twitter `tweets.js`
  after its `window.YTD… =` prefix), parsed incrementally with ijson (a C parser), yielding
  one Python value per item and never the whole document.

The bounds, all refused with `archive_too_large` (HTTP 413) or `invalid_source` (422):
- one JSON token (a string, a number) and any stretch of input without a parse event:
  `MAX_TOKEN_BYTES`;
- one item, built: `MAX_ITEM_BYTES` of its strings and keys plus `EVENT_COST` per value;
- nesting, inside or outside the items: `MAX_DEPTH` levels.
So a parser's live memory is about CHUNK + MAX_TOKEN_BYTES + the current item (a few MiB),
whatever the size or compression ratio of the archive. Parse in a worker thread (CPU work).

Use it like this (a format of issue 18 needs only the path and a per-item function):

    with open_member(archive, info) as stream:
        for item in iter_json_items(stream, ("orderedItems",), name="outbox.json"):
            ...

Nothing is stored while reading: the archive connector reads the whole member once to check
it before it hands out the first batch, so a refused archive leaves nothing half-stored.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from typing import IO, Any

import ijson

from coop.connectors import spec

CHUNK = 64 * 1024
MAX_MEMBER_BYTES = 100 * 1024 * 1024  # decompressed bytes of the one file a parser reads
MAX_TOKEN_BYTES = 1024 * 1024
MAX_ITEM_BYTES = 1024 * 1024
MAX_DEPTH = 64
EVENT_COST = 16  # budget charged per JSON value, so many empty values also count
MAX_PREFIX = 1024  # bytes before the JSON in a `window.YTD.x.part0 = [...]` file


def too_large(message: str) -> spec.InvalidSourceError:
    return spec.InvalidSourceError(message, code="archive_too_large")


class _CountingReader:
    """A member's decompressed stream that refuses to give more than `limit` bytes."""

    def __init__(self, stream: IO[bytes], limit: int) -> None:
        self._stream = stream
        self._left = limit

    def read(self, size: int = CHUNK) -> bytes:
        chunk = self._stream.read(max(min(size, CHUNK), 1))
        self._left -= len(chunk)
        if self._left < 0:
            raise too_large("The archive expands to more than coop accepts.")
        return chunk

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> _CountingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int = MAX_MEMBER_BYTES
) -> _CountingReader:
    """A bounded reader of one member (use as a context manager)."""
    try:
        return _CountingReader(archive.open(info), min(limit, MAX_MEMBER_BYTES))
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError):
        raise spec.InvalidSourceError("The archive could not be read.") from None


def read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """A whole (small) member as bytes, under `limit`: for files that are not JSON arrays."""
    out = bytearray()
    with open_member(archive, info, limit) as stream:
        while chunk := read_chunk(stream):
            out.extend(chunk)
    return bytes(out)


def read_chunk(stream: _CountingReader) -> bytes:
    """The next chunk of a member (b"" at its end); a corrupt member is `invalid_source`."""
    try:
        return stream.read(CHUNK)
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError, EOFError):
        raise spec.InvalidSourceError("The archive could not be read.") from None


class _Item:
    """Builds one item from parse events under a byte budget (no recursion)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.stack: list[Any] = []
        self.key: str | None = None
        self.value: Any = None
        self.spent = 0

    def _charge(self, value: Any) -> None:
        self.spent += EVENT_COST + (len(value) if isinstance(value, str) else 0)
        if self.spent > MAX_ITEM_BYTES:
            raise too_large(f"One entry in {self.name} is larger than coop accepts.")

    def _put(self, value: Any) -> None:
        if not self.stack:
            self.value = value
        elif isinstance(self.stack[-1], list):
            self.stack[-1].append(value)
        else:
            self.stack[-1][self.key] = value

    def event(self, kind: str, value: Any) -> bool:
        """Feed one event; True when the item is complete."""
        self._charge(value)
        if kind == "map_key":
            self.key = value
            return False
        if kind in ("start_map", "start_array"):
            container: Any = {} if kind == "start_map" else []
            self._put(container)
            self.stack.append(container)
            return False
        if kind in ("end_map", "end_array"):
            self.stack.pop()
            return not self.stack
        self._put(value)
        return not self.stack


class _Walker:
    """Follows the parse events of a whole document; collects the items at `path`."""

    def __init__(self, path: tuple[str, ...], name: str) -> None:
        self.path = path
        self.name = name
        # One entry per open container: the current key of a map, or None for an array.
        self.open: list[str | None] = []
        self.kinds: list[str] = []
        self.item: _Item | None = None
        self.found = False
        self.ready: list[Any] = []

    def _at_target(self) -> bool:
        depth = len(self.path)
        return (
            len(self.kinds) == depth + 1
            and self.kinds[-1] == "array"
            and all(self.kinds[i] == "map" for i in range(depth))
            and tuple(self.open[:depth]) == self.path
        )

    def event(self, kind: str, value: Any) -> None:
        if kind in ("start_map", "start_array") and len(self.kinds) >= MAX_DEPTH:
            raise too_large(f"{self.name} is nested deeper than coop accepts.")
        if self.item is None and self._at_target() and kind not in ("end_array",):
            self.item = _Item(self.name)
        if self.item is not None:
            self._track(kind, value)
            if self.item.event(kind, value):
                self.ready.append(self.item.value)
                self.item = None
            return
        self._track(kind, value)

    def _track(self, kind: str, value: Any) -> None:
        if kind == "start_map":
            self.kinds.append("map")
            self.open.append(None)
        elif kind == "start_array":
            self.kinds.append("array")
            self.open.append(None)
            self.found = self.found or self._at_target()
        elif kind in ("end_map", "end_array"):
            self.kinds.pop()
            self.open.pop()
        elif kind == "map_key":
            self.open[-1] = value


def _skip_prefix(stream: _CountingReader, name: str) -> bytes:
    """The first chunk from the `[` on, for `window.YTD.tweets.part0 = [...]` files."""
    head = read_chunk(stream)
    text = head[3:] if head.startswith(b"\xef\xbb\xbf") else head
    start = text.find(b"[", 0, MAX_PREFIX)
    if not text.lstrip().startswith(b"window.YTD.") or start < 0:
        raise spec.InvalidSourceError(f"{name} is not an X/Twitter archive file.")
    return text[start:]


def iter_json_items(
    stream: _CountingReader,
    path: tuple[str, ...] = (),
    *,
    name: str,
    after_prefix: bool = False,
    required: bool = True,
) -> Iterator[Any]:
    """Each item of the JSON array at `path` (object keys from the top; `()` for a top-level
    array), one at a time, within the bounds of the module docstring.

    `after_prefix` skips a `window.YTD.… =` assignment before the JSON. Raises
    InvalidSourceError (`invalid_source`) when the stream is not JSON or holds no array at
    `path` (unless `required` is False: a file that may hold one of several lists), and
    (`archive_too_large`) past a bound; `name` is the file's name in messages."""
    walker = _Walker(path, name)
    events = ijson.sendable_list()
    parser = ijson.basic_parse_coro(events, use_float=True)
    pending = 0
    chunk = _skip_prefix(stream, name) if after_prefix else read_chunk(stream)
    try:
        while chunk:
            parser.send(chunk)
            pending = pending + len(chunk) if not events else 0
            if pending > MAX_TOKEN_BYTES:
                raise too_large(f"{name} holds a value larger than coop accepts.")
            yield from _drain(walker, events)
            chunk = read_chunk(stream)
        parser.close()
        yield from _drain(walker, events)
    except ijson.JSONError:
        raise spec.InvalidSourceError(f"{name} is not valid JSON.") from None
    if required and not walker.found:
        raise spec.InvalidSourceError(f"{name} does not hold the list coop reads.")


def _drain(walker: _Walker, events: list[tuple[str, Any]]) -> Iterator[Any]:
    for kind, value in events:
        walker.event(kind, value)
    del events[:]
    ready, walker.ready = walker.ready, []
    yield from ready


__all__ = [
    "MAX_ITEM_BYTES",
    "MAX_MEMBER_BYTES",
    "MAX_TOKEN_BYTES",
    "iter_json_items",
    "open_member",
    "read_chunk",
    "read_member",
    "too_large",
]
