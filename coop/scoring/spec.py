"""The scorer contract (entry-point group `coop.scorers`).

A scorer is a class (or instance) with the attributes below and a pure `score` method:
same records, same `now`, same version -> the same result, with no I/O. It sees only the
record kinds it declares in `reads` (of a kind named in `fields`, only those fields), and only
for members who enabled it. Its result explains itself: contributions that point at input
records by `ref`, and reasons in plain words.

Plugin authors import only this module and `coop.testing`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Protocol, runtime_checkable

API_VERSION = 1

ENTRY_POINT_GROUP = "coop.scorers"
NAME_PATTERN = r"[a-z][a-z0-9_-]{0,39}"  # a scorer's `name` must match this, whole

MAX_CONTRIBUTIONS = 50
MAX_REASONS = 20
MAX_TEXT = 280
MAX_BREAKDOWN = 100  # named sub-values in ScoreResult.breakdown
# The InputRecord fields a scorer may declare per kind in `Scorer.fields` (text is
# `needs_text`). "occurred_at" is always among them: every record comes with its date.
FIELDS = ("occurred_at", "counts", "network")


@dataclass(frozen=True)
class InputRecord:
    """One record as a scorer sees it. `ref` is an opaque reference that contributions use
    to point at the record: stable for the same record and scorer, different between
    scorers, not the record's id (do not store it). `text` is present only when the scorer
    declared `needs_text = True`."""

    ref: str
    kind: str
    occurred_at: datetime
    counts: Mapping[str, int] = field(default_factory=dict)
    text: str | None = None
    network: str | None = None  # where it was published: "bluesky", "facebook", "github", …


@dataclass(frozen=True)
class Contribution:
    """How much one record (or, with `ref=None`, a group of records) moved the score, and why."""

    amount: float
    reason: str
    ref: str | None = None


@dataclass(frozen=True)
class ScoreResult:
    """The value (inside the scorer's declared `range`) and its explanation.

    - `contributions`: the largest movers, at most MAX_CONTRIBUTIONS, each pointing at a record.
    - `reasons`: short sentences a member can read ("3 posts this week were boosted 12 times").
    - `breakdown`: optional named sub-values (e.g. per week) that the UI can chart.
    """

    value: float
    contributions: Sequence[Contribution] = ()
    reasons: Sequence[str] = ()
    breakdown: Mapping[str, float] = field(default_factory=dict)


@runtime_checkable
class Scorer(Protocol):
    """A scoring plugin. Class attributes are read before any member data is involved."""

    api_version: ClassVar[int]
    name: ClassVar[str]  # stable, lowercase, [a-z][a-z0-9_-]*: used in scopes (`score:<name>`)
    version: ClassVar[str]  # bump on every change that can move a score
    title: ClassVar[str]
    description: ClassVar[str]
    reads: ClassVar[tuple[str, ...]]  # record kinds, see coop.connectors.spec.KINDS
    # Optional: for some kinds in `reads`, the only FIELDS it reads (always "occurred_at"),
    # e.g. {"post": ("occurred_at",)} for post dates only. The sandbox passes nothing else
    # (counts empty, network None). A kind not named here is read with all its fields.
    fields: ClassVar[Mapping[str, tuple[str, ...]]]
    range: ClassVar[tuple[float, float]]
    needs_text: ClassVar[bool]
    homepage: ClassVar[str]
    # Optional: the band edges apps see at the `score:<name>:band` level, from range low to
    # range high, strictly increasing (default: ten equal bands of `range`).
    bands: ClassVar[tuple[float, ...]]

    def score(self, records: Sequence[InputRecord], now: datetime) -> ScoreResult:
        """Compute the score from the member's records as of `now`. Must be pure."""
        ...


# Every public member of this contract. docs/plugins/reference.md documents each one and a
# test fails when one is missing there.
CONTRACT_MEMBERS: tuple[str, ...] = (
    "API_VERSION",
    "ENTRY_POINT_GROUP",
    "NAME_PATTERN",
    "MAX_CONTRIBUTIONS",
    "MAX_REASONS",
    "MAX_TEXT",
    "MAX_BREAKDOWN",
    "FIELDS",
    "InputRecord",
    "InputRecord.ref",
    "InputRecord.kind",
    "InputRecord.occurred_at",
    "InputRecord.counts",
    "InputRecord.text",
    "InputRecord.network",
    "Contribution",
    "Contribution.amount",
    "Contribution.reason",
    "Contribution.ref",
    "ScoreResult",
    "ScoreResult.value",
    "ScoreResult.contributions",
    "ScoreResult.reasons",
    "ScoreResult.breakdown",
    "Scorer",
    "Scorer.api_version",
    "Scorer.name",
    "Scorer.version",
    "Scorer.title",
    "Scorer.description",
    "Scorer.reads",
    "Scorer.fields",
    "Scorer.range",
    "Scorer.needs_text",
    "Scorer.homepage",
    "Scorer.bands",
    "Scorer.score",
)
