"""What a scorer reads, field by field: the one filter between a member's records and a
scorer, the words members read, and the comparison that version consent asks about.

A scorer reads the kinds in `reads`; for a kind named in its optional `fields` it gets only
those fields of each record (always the date), for any other kind all of them. Text stays
`needs_text`. Stored (consent rows, consent events) as a comma-separated list of items:
`post` (all fields) or `post:occurred_at+network` (those fields only), so rows written before
fields existed read as "all fields".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from coop.connectors.spec import KINDS
from coop.scoring.spec import FIELDS, InputRecord

ALL = frozenset(FIELDS)
Reads = Mapping[str, frozenset[str]]  # kind -> the fields read (ALL when undeclared)

# The records of each kind, and what their counts are, as a member reads them.
NOUNS: Mapping[str, str] = {
    "post": "posts you published",
    "repository": "your public repositories",
    "activity": "your public activity",
    "audience": "your follower numbers",
}
COUNT_WORDS: Mapping[str, str] = {
    "post": "reaction counts",
    "repository": "star and fork counts",
    "activity": "counts",
    "audience": "follower counts",
}


def ordered(fields: Iterable[str]) -> tuple[str, ...]:
    wanted = set(fields)
    return tuple(f for f in FIELDS if f in wanted)


def reads_of(
    reads: Iterable[str], fields: Mapping[str, Iterable[str]]
) -> dict[str, frozenset[str]]:
    """Each kind read with its fields (a declaration already checked by validate)."""
    return {kind: frozenset(fields[kind]) if kind in fields else ALL for kind in reads}


def encode(reads: Reads) -> str:
    items = []
    for kind, fields in reads.items():
        items.append(kind if fields >= ALL else f"{kind}:{'+'.join(ordered(fields))}")
    return ",".join(items)


def decode(text: str) -> dict[str, frozenset[str]]:
    found: dict[str, frozenset[str]] = {}
    for item in filter(None, text.split(",")):
        kind, _, listed = item.partition(":")
        found[kind] = frozenset(listed.split("+")) & ALL if listed else ALL
    return found


def visible(record: InputRecord, fields: frozenset[str], needs_text: bool) -> InputRecord:
    """The record as a scorer that reads `fields` of its kind sees it."""
    return InputRecord(
        ref=record.ref,
        kind=record.kind,
        occurred_at=record.occurred_at,
        counts=dict(record.counts) if "counts" in fields else {},
        text=record.text if needs_text else None,
        network=record.network if "network" in fields else None,
    )


def _field_words(kind: str, fields: Iterable[str]) -> str:
    counts = COUNT_WORDS.get(kind, "counts")
    words = {"occurred_at": "dates", "counts": counts, "network": "networks"}
    parts = [words[f] for f in ordered(fields)]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def words(kind: str, fields: frozenset[str]) -> str:
    """One kind as read, for the member: "posts you published: dates only"."""
    if fields >= ALL:
        return KINDS.get(kind, kind)
    return f"{NOUNS.get(kind, kind)}: {_field_words(kind, fields)} only"


def describe(reads: Reads) -> list[str]:
    return [words(kind, fields) for kind, fields in reads.items()]


def wider(new: Reads, old: Reads) -> dict[str, frozenset[str]]:
    """What `new` reads beyond `old`: new kinds with their fields, and added fields of
    kinds both read."""
    found = {}
    for kind, fields in new.items():
        added = fields - old[kind] if kind in old else fields
        if added:
            found[kind] = fields if kind not in old else added
    return found


def change_words(change: Reads, before: Reads) -> list[str]:
    """Kinds (or fields of kinds) added or dropped, for the member: whole kinds in full,
    fields of a kind the other side also reads as "… : also their …"."""
    out = []
    for kind, fields in change.items():
        if kind in before:
            out.append(f"{NOUNS.get(kind, kind)}: their {_field_words(kind, fields)}")
        else:
            out.append(words(kind, fields))
    return out
