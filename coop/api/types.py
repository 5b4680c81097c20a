"""Object types of the read side: the viewer's scores, their explanation, the catalogue."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import Enum

import strawberry
from strawberry import Info

from coop.api import ids
from coop.api.backend import (
    ChangeView,
    ContributionView,
    ExplanationView,
    HistoryEntryView,
    ScorerInfo,
    ScoreStateView,
)
from coop.api.context import ApiContext
from coop.api.disclosed import disclosed
from coop.consent.bearer import CurrentScore
from coop.consent.disclosure import Reveals
from coop.scoring import declared
from coop.scoring.bands import band_of, bands_of


@strawberry.interface(description="An object with a global id (see `Query.node`).")
class Node:
    id: strawberry.ID = strawberry.field(description="The object's opaque global id.")


@strawberry.type(description="The inclusive range a scorer's values fall in.")
class ScoreRange:
    min: float = strawberry.field(description="The lowest possible value.")
    max: float = strawberry.field(description="The highest possible value.")

    @staticmethod
    def of(bounds: tuple[float, float]) -> ScoreRange:
        return ScoreRange(min=bounds[0], max=bounds[1])


@strawberry.type(description="The scorer (and its version) that computed a score.")
class ScorerRef:
    name: str = strawberry.field(description="The scorer's stable name, as in `score:<name>`.")
    version: str = strawberry.field(description="The scorer version that computed the value.")


@strawberry.type(description="How much one record (or group of records) moved a score.")
class Contribution:
    amount: float = strawberry.field(description="The signed change this contribution made.")
    reason: str = strawberry.field(description="Why, in plain words.")
    record: str | None = strawberry.field(
        description="An opaque reference to the member's record this points at, if any."
    )

    @staticmethod
    def of(views: Sequence[ContributionView]) -> list[Contribution]:
        return [Contribution(amount=c.amount, reason=c.reason, record=c.ref) for c in views]


@strawberry.type(description="One named sub-value of a score (e.g. one week's count).")
class BreakdownRow:
    name: str = strawberry.field(description="What the value is of, as the scorer names it.")
    value: float = strawberry.field(description="The sub-value.")


@strawberry.type(description="Why a score has its value.")
class Explanation:
    contributions: list[Contribution] = strawberry.field(
        description="The largest movers, at most 50, largest first."
    )
    reasons: list[str] = strawberry.field(description="Short sentences a person can read.")
    breakdown: list[BreakdownRow] = strawberry.field(
        description="Named sub-values (e.g. one per week), in the order the scorer gave them."
    )


@strawberry.enum(description="What moved a score (see `ChangeCause`).")
class ChangeKind(Enum):
    SCORER_VERSION = strawberry.enum_value(
        "scorer_version",
        description="A new scorer version alone: the same records scored at the same time.",
    )
    NEW_DATA = strawberry.enum_value(
        "new_data", description="A record added, or an existing record edited (new reactions)."
    )
    REMOVED_DATA = strawberry.enum_value(
        "removed_data", description="A record no longer in the member's data."
    )
    TIME_PASSED = strawberry.enum_value(
        "time_passed", description="The same records scored later (decay, windows)."
    )
    UNEXPLAINED = strawberry.enum_value(
        "unexplained",
        description=(
            "What coop could not attribute: a scorer that is not deterministic or changed "
            "without a version bump, or a part coop could not re-run. The reason says which."
        ),
    )


@strawberry.type(description="One cause of a score's change, with the amount it moved it.")
class ChangeCause:
    kind: ChangeKind = strawberry.field(description="What kind of cause.")
    amount: float = strawberry.field(description="How much it moved the score (signed).")
    reason: str = strawberry.field(description="What happened, in plain words.")
    record: str | None = strawberry.field(
        description=(
            "The record this cause is about, if it is about one record: the same opaque "
            "reference as `Contribution.record`."
        )
    )


@strawberry.type(
    description=("The band a score falls in: `low <= value < high` (the top band includes `high`).")
)
class ScoreBand:
    low: float = strawberry.field(description="The band's lower edge (inclusive).")
    high: float = strawberry.field(description="The band's upper edge.")


@strawberry.type(
    description=(
        "Why a score moved since the previous one. The causes add up to `delta` (up to float "
        "rounding), largest first."
    )
)
class ScoreChange:
    previous: float = strawberry.field(description="The previous value.")
    delta: float = strawberry.field(description="This value minus the previous one.")
    causes: list[ChangeCause] = strawberry.field(description="The causes, largest first.")

    @staticmethod
    def of(view: ChangeView) -> ScoreChange:
        return ScoreChange(
            previous=view.previous,
            delta=view.delta,
            causes=[
                ChangeCause(
                    kind=ChangeKind(c.kind), amount=c.amount, reason=c.reason, record=c.record
                )
                for c in view.causes
            ],
        )


@strawberry.type(
    description=(
        "A member's current score from one scorer, as precisely as the grant allows: "
        "`score:<scorer>` the exact value, `score:<scorer>:band` only `band`, "
        "`score:<scorer>:atleast:<N>` only `atLeast`. A field above the granted level is "
        "null with `FORBIDDEN` and `required_scope`."
    )
)
class Score(Node):
    value: float | None = strawberry.field(
        description="The score, inside `range` (exact level: scope `score:<scorer>`).",
        extensions=disclosed(Reveals.VALUE),
    )
    band: ScoreBand | None = strawberry.field(
        description=(
            "The band the value falls in (scope `score:<scorer>:band`, or the exact level): "
            "the scorer's declared bands, else ten equal bands of `range`."
        ),
        extensions=disclosed(Reveals.BAND),
    )
    at_least: bool | None = strawberry.field(
        description=(
            "Whether the value is at least `threshold` (scope `score:<scorer>:atleast:<N>`); "
            "null at the other levels, which have no threshold."
        ),
        extensions=disclosed(Reveals.THRESHOLD),
    )
    threshold: float | None = strawberry.field(
        description="The threshold N of the grant's `score:<scorer>:atleast:<N>`, else null.",
        extensions=disclosed(Reveals.THRESHOLD),
    )
    range: ScoreRange = strawberry.field(description="The scorer's declared output range.")
    scorer: ScorerRef = strawberry.field(description="Which scorer (and version) computed it.")
    computed_at: datetime = strawberry.field(description="When it was computed (UTC).")
    version: str = strawberry.field(
        description="The scorer version that computed the value (as `scorer.version`)."
    )
    view: strawberry.Private[CurrentScore]

    @strawberry.field(
        description=(
            "True when coop no longer keeps this score current: a new scorer version waits "
            "for the member's consent. The value is the last one the accepted version gave."
        )
    )
    async def stale(self, info: Info[ApiContext, None]) -> bool:
        return await read_stale(info.context, self)

    @strawberry.field(
        description=(
            "Why the score moved since the previous one; null for a first score (exact "
            "level `score:<scorer>` only: it reveals the values)."
        ),
        extensions=disclosed(Reveals.VALUE),
    )
    async def change(self, info: Info[ApiContext, None]) -> ScoreChange | None:
        return await read_change(info.context, self)

    @strawberry.field(
        description=(
            "Contributions and reasons: why the score has its value (exact level only: it "
            "reveals the value)."
        ),
        extensions=disclosed(Reveals.VALUE),
    )
    async def explanation(self, info: Info[ApiContext, None]) -> Explanation | None:
        return await read_explanation(info.context, self)

    @staticmethod
    def of(view: CurrentScore, subject: str) -> Score:
        """Every field filled in; the `disclosed` gates decide which ones an app sees."""
        low, high = band_of(view.value, bands_of(view.range, view.bands))
        return Score(
            id=strawberry.ID(ids.encode("Score", f"{subject}/{view.scorer}")),
            value=view.value,
            band=ScoreBand(low=low, high=high),
            at_least=None if view.threshold is None else view.value >= view.threshold,
            threshold=view.threshold,
            range=ScoreRange.of(view.range),
            scorer=ScorerRef(name=view.scorer, version=view.scorer_version),
            computed_at=view.computed_at,
            version=view.scorer_version,
            view=view,
        )


# The resolvers of Score's fields that read, shared with the compiled plans (coop.api.plans),
# which call them after the same disclosure gate.


async def read_stale(ctx: ApiContext, score: Score) -> bool:
    state: ScoreStateView = await ctx.states.load(score.view)
    return state.stale


async def read_change(ctx: ApiContext, score: Score) -> ScoreChange | None:
    state: ScoreStateView = await ctx.states.load(score.view)
    return None if state.change is None else ScoreChange.of(state.change)


async def read_explanation(ctx: ApiContext, score: Score) -> Explanation:
    found: ExplanationView = await ctx.explanations.load(score.view)
    return Explanation(
        contributions=Contribution.of(found.contributions),
        reasons=list(found.reasons),
        breakdown=[BreakdownRow(name=k, value=v) for k, v in found.breakdown],
    )


@strawberry.type(description="One record kind a scorer reads, and which of its fields.")
class ReadKind:
    kind: str = strawberry.field(description="The record kind (`post`, `repository`, ...).")
    fields: list[str] | None = strawberry.field(
        description=(
            "The fields of each record it gets (`occurred_at`, `counts`, `network`; the date "
            "always), when the scorer declares them; null means every field. Text is never "
            "among them: a scorer gets text only when it needs it, which the member sees."
        )
    )
    words: str = strawberry.field(
        description='What it reads, in the words members see ("posts you published: dates only").'
    )


@strawberry.type(description="An installed scorer, as the public catalogue lists it.")
class Scorer:
    name: str = strawberry.field(description="Stable name, used in scopes (`score:<name>`).")
    version: str = strawberry.field(description="The installed version.")
    title: str = strawberry.field(description="A human title.")
    description: str = strawberry.field(description="What it measures, in plain words.")
    reads: list[str] = strawberry.field(description="The record kinds it reads.")
    range: ScoreRange = strawberry.field(description="Its output range.")
    homepage: str = strawberry.field(description="Where its source and documentation live.")
    reads_fields: list[ReadKind] = strawberry.field(
        description="Each kind in `reads` with the fields it reads (null: all of them)."
    )

    @staticmethod
    def of(info: ScorerInfo) -> Scorer:
        return Scorer(
            name=info.name,
            version=info.version,
            title=info.title,
            description=info.description,
            reads=list(info.reads),
            range=ScoreRange.of(info.range),
            homepage=info.homepage,
            reads_fields=read_kinds(info),
        )


def read_kinds(info: ScorerInfo) -> list[ReadKind]:
    declared_fields = dict(info.fields)
    reads = declared.reads_of(info.reads, declared_fields)
    return [
        ReadKind(
            kind=kind,
            fields=list(declared.ordered(declared_fields[kind]))
            if kind in declared_fields
            else None,
            words=declared.words(kind, reads[kind]),
        )
        for kind in info.reads
    ]


@strawberry.type(description="Relay page information.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="Whether more items follow.")
    end_cursor: str | None = strawberry.field(description="Pass as `after` for the next page.")


@strawberry.enum(description="What moved a past score most (its largest `ChangeKind`).")
class HistoryChange(Enum):
    FIRST = strawberry.enum_value("first", description="The first score from this scorer.")
    NEW_DATA = strawberry.enum_value("new_data", description="New or edited records.")
    AGED_OUT = strawberry.enum_value(
        "data_aged_out", description="Records removed, or time passed (decay, windows)."
    )
    VERSION_CHANGED = strawberry.enum_value(
        "version_changed", description="A new scorer version moved it most."
    )
    UNCHANGED = strawberry.enum_value("unchanged", description="Nothing moved the score.")
    OTHER = strawberry.enum_value("other", description="Unexplained (see `ScoreChange`).")


@strawberry.type(description="One past value of a score.")
class ScoreHistoryEntry:
    value: float = strawberry.field(description="The value then.")
    scorer_version: str = strawberry.field(description="The scorer version then.")
    computed_at: datetime = strawberry.field(description="When it was computed (UTC).")
    change: HistoryChange = strawberry.field(description="What moved it from the previous one.")
    delta: float | None = strawberry.field(description="Change from the previous value.")
    contributions: list[Contribution] = strawberry.field(
        description="The contributions that moved it."
    )

    @staticmethod
    def of(view: HistoryEntryView) -> ScoreHistoryEntry:
        try:
            change = HistoryChange(view.change)
        except ValueError:
            change = HistoryChange.OTHER
        return ScoreHistoryEntry(
            value=view.value,
            scorer_version=view.scorer_version,
            computed_at=view.computed_at,
            change=change,
            delta=view.delta,
            contributions=Contribution.of(view.contributions),
        )


@strawberry.type(description="An edge of a score history page.")
class ScoreHistoryEdge:
    cursor: str = strawberry.field(description="This entry's cursor.")
    node: ScoreHistoryEntry = strawberry.field(description="The entry.")


@strawberry.type(description="A page of a score's history, newest first (Relay connection).")
class ScoreHistoryConnection:
    edges: list[ScoreHistoryEdge] = strawberry.field(description="The entries of this page.")
    page_info: PageInfo = strawberry.field(description="Where this page ends.")
