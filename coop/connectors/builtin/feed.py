"""The `feed` connector: the RSS or Atom feed of a self-hosted blog.

The engine's outbound client fetches the bytes (SSRF guard, size cap, time limits); this module
never lets feedparser fetch anything. The XML is first parsed by defusedxml, which refuses
entity declarations and external references (billion laughs, XXE), and only then handed to
feedparser, in a worker thread with a time limit. The body is at most MAX_FEED_BYTES (5 MiB);
the check streams it; feedparser then holds the parsed entries (measured in
docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import calendar
import hashlib
import io
import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import feedparser
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeElementTree

from coop.connectors import spec
from coop.connectors.builtin import plain_text, rest, safe_url

MAX_FEED_BYTES = 5 * 1024 * 1024
PARSE_SECONDS = 10.0
BATCH_SIZE = 200
MAX_TEXT = 1000
MAX_TITLE = 300
ACCEPT = "application/atom+xml, application/rss+xml, application/xml;q=0.9, text/xml;q=0.8"


def check_xml(body: bytes) -> None:
    """Refuse XML with entity declarations or external references, and non-XML bodies."""
    try:
        # Streamed, each element dropped once closed: the check never holds the whole tree.
        for _event, element in SafeElementTree.iterparse(
            io.BytesIO(body), forbid_dtd=False, forbid_entities=True
        ):
            element.clear()
    except DefusedXmlException:
        raise spec.InvalidSourceError(
            "The feed uses XML entity declarations, which coop refuses.", code="unsafe_xml"
        ) from None
    except SafeElementTree.ParseError:
        raise spec.InvalidSourceError(
            "That address does not serve a well-formed RSS or Atom feed.", code="invalid_source"
        ) from None


def _when(entry: Any) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = entry.get(key)
        if value:
            return datetime.fromtimestamp(calendar.timegm(value), UTC)
    return None


def _external_id(entry: Any) -> str | None:
    for key in ("id", "link"):
        value = entry.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:1024]
    return None


def _counts(entry: Any) -> dict[str, int]:
    raw = entry.get("slash_comments")
    if isinstance(raw, str) and raw.strip().isdigit():
        return {"replies": int(raw.strip())}
    return {}


def to_records(parsed: Any) -> list[spec.Record]:
    """Entries with an id and a date, oldest first, as `post` records (no HTML kept)."""
    records = []
    for entry in parsed.entries:
        external_id, occurred_at = _external_id(entry), _when(entry)
        if external_id is None or occurred_at is None:
            continue  # without both, re-syncs could neither de-duplicate nor date it
        summary = plain_text(entry.get("summary"))
        records.append(
            spec.Record(
                kind=spec.POST,
                external_id=external_id,
                occurred_at=occurred_at,
                counts=_counts(entry),
                text=summary if summary and len(summary) <= MAX_TEXT else None,
                title=plain_text(entry.get("title"))[:MAX_TITLE] or None,
                url=safe_url(entry.get("link")),
            )
        )
    records.sort(key=lambda r: (r.occurred_at, r.external_id))
    return records


def _seen_key(external_id: str) -> str:
    return hashlib.sha256(external_id.encode()).hexdigest()[:16]


def newer_than(records: Sequence[spec.Record], cursor: str | None) -> list[spec.Record]:
    """The records after the cursor: a later date, or the same date and not yet seen."""
    if not cursor:
        return list(records)
    state = json.loads(cursor)
    latest = datetime.fromisoformat(state["latest"])
    seen = set(state.get("seen", ()))
    return [
        r
        for r in records
        if r.occurred_at > latest
        or (r.occurred_at == latest and _seen_key(r.external_id) not in seen)
    ]


def cursor_after(records: Sequence[spec.Record], previous: str | None) -> str:
    latest = records[-1].occurred_at
    seen = {_seen_key(r.external_id) for r in records if r.occurred_at == latest}
    if previous:
        state = json.loads(previous)
        if datetime.fromisoformat(state["latest"]) == latest:
            seen |= set(state.get("seen", ()))
    return json.dumps({"latest": latest.isoformat(), "seen": sorted(seen)})


def _checked_parse(body: bytes) -> Any:
    check_xml(body)
    # A stream, never bytes or str: feedparser treats those as a URL to fetch or a local file
    # name to open before it treats them as a document.
    return feedparser.parse(io.BytesIO(body))


async def parse_feed(body: bytes) -> Any:
    """The parsed feed; both parses run in a worker thread (CPU work off the event loop)."""
    try:
        parsed = await asyncio.wait_for(
            asyncio.to_thread(_checked_parse, body), timeout=PARSE_SECONDS
        )
    except TimeoutError:
        raise spec.InvalidSourceError(
            "The feed took too long to read.", code="invalid_source"
        ) from None
    if not parsed.get("version") and not parsed.entries:
        raise spec.InvalidSourceError(
            "That address does not serve an RSS or Atom feed.", code="invalid_source"
        )
    return parsed


class FeedConnector:
    api_version: ClassVar[int] = spec.API_VERSION
    name: ClassVar[str] = "feed"
    title: ClassVar[str] = "Blog feed (RSS or Atom)"
    description: ClassVar[str] = (
        "Reads the public feed of your blog: the title, date and address of each post, "
        "and a short summary when the feed gives one."
    )
    reads: ClassVar[tuple[str, ...]] = (spec.POST,)
    never_reads: ClassVar[tuple[str, ...]] = (
        "comments or the names of people who comment",
        "anything that is not in the public feed",
        "pages of your site other than the feed",
    )
    auth: ClassVar[spec.AuthMethod] = "url"

    async def sync(
        self, ctx: spec.SyncContext, cursor: str | None
    ) -> AsyncIterator[spec.SyncBatch]:
        response = await ctx.http.get(
            ctx.config["url"], headers={"Accept": ACCEPT}, max_bytes=MAX_FEED_BYTES
        )
        rest.raise_for_status(response, ctx.now)
        parsed = await parse_feed(response.content)
        fresh = newer_than(to_records(parsed), cursor)
        for start in range(0, len(fresh), BATCH_SIZE):
            chunk = fresh[start : start + BATCH_SIZE]
            cursor = cursor_after(chunk, cursor)
            yield spec.SyncBatch(records=chunk, cursor=cursor)


__all__ = ["FeedConnector", "check_xml", "parse_feed", "to_records"]
