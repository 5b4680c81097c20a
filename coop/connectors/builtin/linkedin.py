"""The `linkedin` connector: the CSV data export ("Get a copy of your data") the member made.

Files read (matched anywhere in the ZIP):
- `Shares.csv`: `Date, ShareLink, ShareCommentary, SharedUrl, MediaUrl, Visibility`
  (`Visibility` since about 2022; older exports end at `MediaUrl`): your posts.
- `Comments.csv`: `Date, Link, Message`: when you commented.
- `Reactions.csv`: `Date, Type, Link`: when you reacted, and how (like, celebrate, …).
`Date` is UTC, `YYYY-MM-DD HH:MM:SS`. Never read: `Connections.csv`, `messages.csv`,
invitations, endorsements, ad targeting and every other file; nor the `Link` of a comment or
reaction (someone else's post) or the text of a comment.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import ClassVar
from urllib.parse import unquote

from coop.connectors import spec
from coop.connectors.builtin.exports import ExportConnector, Part, clip, csv_rows, digest

SHARES = re.compile(r"(^|/)shares\.csv$")
COMMENTS = re.compile(r"(^|/)comments\.csv$")
REACTIONS = re.compile(r"(^|/)reactions\.csv$")
URN = re.compile(r"urn:li:(share|ugcpost|activity):\d+", re.IGNORECASE)
FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S UTC", "%Y-%m-%d %H:%M", "%Y-%m-%d")


def parse_date(value: str) -> datetime | None:
    value = value.strip()
    for fmt in FORMATS:
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def share_record(row: dict[str, str]) -> spec.Record | None:
    when = parse_date(row.get("Date", ""))
    if when is None:
        return None
    link = row.get("ShareLink", "").strip()
    urn = URN.search(unquote(link))
    text = clip(row.get("ShareCommentary"))
    native = urn.group(0).lower() if urn else f"{int(when.timestamp())}:{digest(text)}"
    media = 1 if row.get("MediaUrl", "").strip() else 0
    shared = 1 if row.get("SharedUrl", "").strip() else 0
    counts = {k: v for k, v in (("media", media), ("links", shared)) if v}
    return spec.Record(
        kind=spec.POST,
        external_id=f"linkedin:{native}",
        occurred_at=when,
        counts=counts,
        text=text,
        url=link if link.startswith("https://www.linkedin.com/") and len(link) < 2048 else None,
    )


def _activity(kind: str, row: dict[str, str], *identity: str) -> spec.Record | None:
    when = parse_date(row.get("Date", ""))
    if when is None:
        return None
    return spec.Record(
        kind=spec.ACTIVITY,
        external_id=f"linkedin:{kind}:{int(when.timestamp())}:{digest(*identity)}",
        occurred_at=when,
        title=kind,
    )


def comment_record(row: dict[str, str]) -> spec.Record | None:
    return _activity("comment", row, row.get("Link", ""), row.get("Message", ""))


def reaction_record(row: dict[str, str]) -> spec.Record | None:
    kind = row.get("Type", "").strip().lower() or "reaction"
    return _activity("reaction", row, row.get("Link", ""), kind)


class LinkedInConnector(ExportConnector):
    name: ClassVar[str] = "linkedin"
    title: ClassVar[str] = "LinkedIn (your data export)"
    description: ClassVar[str] = (
        'Reads the ZIP you get from LinkedIn\'s "Get a copy of your data": your own posts '
        "(Shares.csv: date, text, link) and the dates of your comments and reactions."
    )
    never_reads: ClassVar[tuple[str, ...]] = (
        "messages, connections, contacts, invitations, endorsements and recommendations",
        "ad targeting and interests, search and login history",
        "names or profiles of other people, including whose posts you commented on or reacted to",
        "the text of your comments (only when you commented)",
    )
    parts: ClassVar[tuple[Part, ...]] = (
        Part(SHARES, csv_rows(share_record)),
        Part(COMMENTS, csv_rows(comment_record)),
        Part(REACTIONS, csv_rows(reaction_record)),
    )
    missing: ClassVar[str] = "No Shares.csv, Comments.csv or Reactions.csv in that archive."


__all__ = ["LinkedInConnector", "comment_record", "parse_date", "reaction_record", "share_record"]
