"""Why a score changed since the previous one: labelled, with the contributions that moved it.

Labels (a change may carry several):
- `new_data`: records that were not in the previous input, or records whose reactions grew;
- `data_aged_out`: records that left the input (window, disconnection) or whose contribution
  shrank, and the passing of time with the same inputs (decay);
- `scorer_version_changed`: the scorer's version differs; both versions are shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

NEW_DATA = "new_data"
DATA_AGED_OUT = "data_aged_out"
VERSION_CHANGED = "scorer_version_changed"
LABELS = (NEW_DATA, DATA_AGED_OUT, VERSION_CHANGED)
MAX_MOVED = 10
EPSILON = 1e-9


@dataclass(frozen=True)
class Snapshot:
    """What attribution needs from one score: its value, version, inputs and contributions."""

    value: float
    version: str
    input_refs: frozenset[str]
    amounts: Mapping[str, float]  # ref -> contribution amount
    record_ids: Mapping[str, str]  # ref -> record id (for links)
    reasons: Mapping[str, str]  # ref -> contribution reason


def snapshot(value: float, version: str, explanation: Mapping[str, Any]) -> Snapshot:
    amounts: dict[str, float] = {}
    record_ids: dict[str, str] = {}
    reasons: dict[str, str] = {}
    for item in explanation.get("contributions", []):
        ref = item.get("ref")
        if ref:
            amounts[ref] = amounts.get(ref, 0.0) + float(item["amount"])
            record_ids[ref] = item.get("record_id") or ""
            reasons[ref] = item.get("reason", "")
    return Snapshot(
        value=value,
        version=version,
        input_refs=frozenset(explanation.get("input_refs", [])),
        amounts=amounts,
        record_ids=record_ids,
        reasons=reasons,
    )


def _label(previous: Snapshot, current: Snapshot, ref: str, grew: bool) -> str:
    if ref not in previous.input_refs:
        return NEW_DATA
    if ref not in current.input_refs:
        return DATA_AGED_OUT
    if previous.version != current.version:
        return VERSION_CHANGED  # same record, other formula
    return NEW_DATA if grew else DATA_AGED_OUT


def _moved(previous: Snapshot, current: Snapshot) -> list[dict[str, Any]]:
    moved: list[dict[str, Any]] = []
    for ref in sorted(set(previous.amounts) | set(current.amounts)):
        before = previous.amounts.get(ref, 0.0)
        after = current.amounts.get(ref, 0.0)
        if abs(after - before) <= EPSILON:
            continue
        label = _label(previous, current, ref, after > before)
        moved.append(
            {
                "ref": ref,
                "record_id": current.record_ids.get(ref) or previous.record_ids.get(ref, ""),
                "before": round(before, 6),
                "after": round(after, 6),
                "label": label,
                "reason": current.reasons.get(ref) or previous.reasons.get(ref, ""),
            }
        )
    moved.sort(key=lambda m: (-abs(float(m["after"]) - float(m["before"])), str(m["ref"])))
    return moved[:MAX_MOVED]


def attribute(previous: Snapshot | None, current: Snapshot) -> dict[str, Any] | None:
    """The change record stored (sealed) with `current`; None for a member's first score."""
    if previous is None:
        return None
    new_refs = current.input_refs - previous.input_refs
    gone_refs = previous.input_refs - current.input_refs
    moved = _moved(previous, current)
    labels: list[str] = []
    if previous.version != current.version:
        labels.append(VERSION_CHANGED)
    if new_refs or any(m["label"] == NEW_DATA for m in moved):
        labels.append(NEW_DATA)
    if gone_refs or any(m["label"] == DATA_AGED_OUT for m in moved):
        labels.append(DATA_AGED_OUT)
    if not labels and abs(current.value - previous.value) > EPSILON:
        labels.append(DATA_AGED_OUT)  # same inputs, later: time moved the score
    return {
        "labels": labels,
        "previous_value": previous.value,
        "value": current.value,
        "delta": round(current.value - previous.value, 6),
        "previous_version": previous.version,
        "version": current.version,
        "new_records": len(new_refs),
        "gone_records": len(gone_refs),
        "moved": moved,
    }
