"""Turning service results into the API's plain views (see coop.api.backend)."""

from __future__ import annotations

from collections.abc import Sequence

from coop.api.backend import (
    CauseView,
    ChangeView,
    ConnectionView,
    ContributionView,
    ExplanationView,
    HistoryEntryView,
    ScorerInfo,
)
from coop.connectors import service as connectors
from coop.scoring import service as scoring
from coop.scoring.changes import Change
from coop.scoring.validate import ScorerMeta


def connection_view(view: connectors.ConnectionView) -> ConnectionView:
    return ConnectionView(
        id=view.id,
        connector=view.connector,
        title=view.title,
        state=view.status,
        last_sync_at=view.last_sync_at,
        next_sync_at=view.next_sync_at,
        records=view.records_count,
        failure_reason=view.status_reason or None,
    )


def is_score_scope(scope: str) -> bool:
    parts = scope.split(":")
    return len(parts) == 2 and parts[0] == "score"


def offset_of(after: str | None) -> int:
    """Cursors are 1-based positions, opaque to clients ("o<n>")."""
    if not after or not after.startswith("o"):
        return 0
    try:
        return max(0, min(int(after[1:]), 10_000))
    except ValueError:
        return 0


def contributions_of(explanation: scoring.Explanation | None) -> Sequence[ContributionView]:
    """The explanation's contributions as they are (largest first): the API renders their
    amount, reason and ref, never their record id."""
    if explanation is None:
        return ()
    return explanation.contributions


def explanation_view(explanation: scoring.Explanation) -> ExplanationView:
    """An explanation opened by coop.scoring.service (`open_explanations`): its contributions
    (the API renders amount, reason and ref, never the record id), reasons and breakdown."""
    return ExplanationView(
        contributions=contributions_of(explanation),
        reasons=[str(r) for r in explanation.reasons],
        breakdown=[(str(k), float(v)) for k, v in explanation.breakdown.items()],
    )


# The history's one-word summary of a change: its largest cause.
_HISTORY_LABELS = {
    "scorer_version": "version_changed",
    "new_data": "new_data",
    "removed_data": "data_aged_out",
    "time_passed": "data_aged_out",
    "unexplained": "other",
}


def change_view(change: Change) -> ChangeView:
    """A decomposed change (coop.scoring.changes.Change): causes point at records by the
    scorer's opaque ref, as contributions do (never the record id)."""
    return ChangeView(
        previous=change.previous_value,
        delta=change.delta,
        causes=[CauseView(c.kind, c.amount, c.reason, c.ref) for c in change.causes],
    )


def history_entry(view: scoring.ScoreView, position: int) -> HistoryEntryView:
    change = view.change
    label = "first"
    if change is not None:
        label = _HISTORY_LABELS.get(change.main_kind, "unchanged")
    return HistoryEntryView(
        id=f"o{position}",
        scorer_version=view.scorer_version,
        value=view.value,
        computed_at=view.computed_at,
        change=label,
        delta=change.delta if change is not None else None,
        contributions=contributions_of(view.explanation),
    )


def scorer_info(meta: ScorerMeta) -> ScorerInfo:
    return ScorerInfo(
        name=meta.name,
        version=meta.version,
        title=meta.title,
        description=meta.description,
        reads=list(meta.reads),
        range=(float(meta.range[0]), float(meta.range[1])),
        homepage=meta.homepage,
        fields=meta.fields,
    )
