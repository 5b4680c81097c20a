"""Why a score changed, decomposed exactly by re-running the scorer on counterfactual inputs.

From the previous score's inputs to the new one's, one step at a time, each step scored by
the *new* scorer version in the sandbox:

1. the previous records at the previous time: the new version alone (`scorer_version`), or,
   with the same version, a check that the scorer still gives the previous value;
2. the same records at the new time (`time_passed`: decay, windows);
3. records removed (`removed_data`), edited and added (`new_data`), one record per step
   (grouped when there are more than MAX_RECORD_STEPS);
4. the final state is exactly the new inputs: if its value is not the stored one, the
   scorer is not deterministic (`unexplained`).

Each cause is the difference between consecutive steps, so the causes add up to the change
(up to float rounding); whatever coop cannot re-run is `unexplained`, never mislabelled.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from coop.errors import ScorerError
from coop.scoring.inputs import ScoreInputs, same_content
from coop.scoring.spec import InputRecord

SCORER_VERSION = "scorer_version"
NEW_DATA = "new_data"
REMOVED_DATA = "removed_data"
TIME_PASSED = "time_passed"
UNEXPLAINED = "unexplained"
KINDS = (SCORER_VERSION, NEW_DATA, REMOVED_DATA, TIME_PASSED, UNEXPLAINED)
MAX_RECORD_STEPS = 12  # data changes beyond this are attributed per group, not per record
MAX_CAUSES = MAX_RECORD_STEPS + 4  # + version or rerun check, time, final rerun, a failure
EPSILON = 1e-9

Run = Callable[[Sequence[InputRecord], datetime], Awaitable[float]]


@dataclass(frozen=True)
class Cause:
    kind: str
    amount: float
    reason: str
    ref: str | None = None
    record_id: str | None = None


@dataclass(frozen=True)
class Side:
    """One end of a change: the stored value, the version that computed it, its inputs."""

    value: float
    version: str
    inputs: ScoreInputs


@dataclass(frozen=True)
class Decomposition:
    causes: tuple[Cause, ...]
    unversioned: bool = False  # same inputs and version gave another value


def to_json(causes: Sequence[Cause]) -> list[dict[str, Any]]:
    return [
        {
            "kind": c.kind,
            "amount": c.amount,
            "reason": c.reason,
            "ref": c.ref,
            "record_id": c.record_id,
        }
        for c in causes
    ]


def from_json(items: Sequence[Mapping[str, Any]]) -> tuple[Cause, ...]:
    return tuple(
        Cause(
            kind=str(c["kind"]),
            amount=float(c["amount"]),
            reason=str(c["reason"]),
            ref=c.get("ref"),
            record_id=c.get("record_id"),
        )
        for c in items
    )


def largest_first(causes: Sequence[Cause]) -> tuple[Cause, ...]:
    return tuple(sorted(causes, key=lambda c: (-abs(c.amount), c.kind, c.ref or "")))


def unexplained(amount: float, reason: str) -> tuple[Cause, ...]:
    return () if abs(amount) <= EPSILON else (Cause(UNEXPLAINED, amount, reason),)


def _span(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if abs(seconds) >= size:
            n = round(seconds / size)
            return f"{n} {unit}{'' if n == 1 else 's'}"
    if abs(seconds) < 1:
        return "less than a second"
    n = round(seconds)
    return f"{n} second{'' if n == 1 else 's'}"


def _describe(record: InputRecord) -> str:
    return f"{record.kind} of {record.occurred_at:%Y-%m-%d}"


def _counts(record: InputRecord) -> str:
    return ", ".join(f"{n} {k}" for k, n in sorted(record.counts.items())) or "no reactions"


def _start(before: Side, after: Side) -> dict[str, InputRecord]:
    """The previous records as the new version would have seen them: only kinds it reads,
    text only if it asks, plus records of kinds that only the new version reads."""
    new_reads, old_reads = set(after.inputs.reads), set(before.inputs.reads)
    latest = after.inputs.by_ref()
    state: dict[str, InputRecord] = {}
    for record in before.inputs.records:
        if record.kind not in new_reads:
            continue
        if not after.inputs.needs_text:
            record = replace(record, text=None)
        elif not before.inputs.needs_text and record.ref in latest:
            record = replace(record, text=latest[record.ref].text)
        state[record.ref] = record
    for record in after.inputs.records:
        if record.kind not in old_reads:
            state[record.ref] = record
    return state


def _version_reason(before: Side, after: Side) -> str:
    reason = f"Version {before.version} → {after.version}, on the same records at the same time"
    more = sorted(set(after.inputs.reads) - set(before.inputs.reads))
    less = sorted(set(before.inputs.reads) - set(after.inputs.reads))
    if more:
        reason += f"; it now also reads {', '.join(more)}"
    if less:
        reason += f"; it no longer reads {', '.join(less)}"
    return reason + "."


@dataclass
class _Step:
    kind: str
    reason: str
    apply: Callable[[dict[str, InputRecord]], None]
    ref: str | None = None


def _set(ref: str, record: InputRecord | None) -> Callable[[dict[str, InputRecord]], None]:
    def apply(state: dict[str, InputRecord]) -> None:
        if record is None:
            state.pop(ref, None)
        else:
            state[ref] = record

    return apply


def _record_steps(state: Mapping[str, InputRecord], after: ScoreInputs) -> list[_Step]:
    latest = after.by_ref()
    removed = [state[ref] for ref in sorted(set(state) - set(latest))]
    edited = [
        (state[ref], latest[ref])
        for ref in sorted(set(state) & set(latest))
        if not same_content(state[ref], latest[ref])
    ]
    added = [latest[ref] for ref in sorted(set(latest) - set(state))]
    if len(removed) + len(edited) + len(added) > MAX_RECORD_STEPS:
        return _group_steps(removed, [new for _, new in edited], added)
    steps = [
        _Step(REMOVED_DATA, f"{_describe(r)} is no longer in your data", _set(r.ref, None), r.ref)
        for r in removed
    ]
    steps += [
        _Step(
            NEW_DATA,
            f"{_describe(new)} changed: {_counts(old)} → {_counts(new)}",
            _set(new.ref, new),
            new.ref,
        )
        for old, new in edited
    ]
    steps += [
        _Step(NEW_DATA, f"new {_describe(r)}: {_counts(r)}", _set(r.ref, r), r.ref) for r in added
    ]
    return steps


def _group_steps(
    removed: Sequence[InputRecord], edited: Sequence[InputRecord], added: Sequence[InputRecord]
) -> list[_Step]:
    def put(records: Sequence[InputRecord], drop: bool) -> Callable[[dict[str, InputRecord]], None]:
        def apply(state: dict[str, InputRecord]) -> None:
            for r in records:
                if drop:
                    state.pop(r.ref, None)
                else:
                    state[r.ref] = r

        return apply

    steps = []
    if removed:
        steps.append(
            _Step(
                REMOVED_DATA,
                f"{len(removed)} records are no longer in your data",
                put(removed, True),
            )
        )
    if edited:
        steps.append(
            _Step(NEW_DATA, f"{len(edited)} records changed (new reactions)", put(edited, False))
        )
    if added:
        steps.append(_Step(NEW_DATA, f"{len(added)} new records", put(added, False)))
    return steps


class _Chain:
    """Walks the steps, turning each re-run's difference into a cause."""

    def __init__(self, start: float, run: Run, ids: Mapping[str, str]) -> None:
        self.value = start
        self.run = run
        self.ids = ids
        self.causes: list[Cause] = []

    async def step(
        self,
        kind: str,
        reason: str,
        records: Mapping[str, InputRecord],
        now: datetime,
        ref: str | None = None,
    ) -> float:
        value = await self.run(sorted(records.values(), key=lambda r: r.ref), now)
        amount = value - self.value
        if abs(amount) > EPSILON:
            self.causes.append(Cause(kind, amount, reason, ref, self.ids.get(ref) if ref else None))
        self.value = value
        return value


async def decompose(*, before: Side, after: Side, run: Run) -> Decomposition:
    """The causes that take `before.value` to `after.value`, largest first."""
    ids = {**before.inputs.record_ids, **after.inputs.record_ids}
    chain = _Chain(before.value, run, ids)
    state = _start(before, after)
    unversioned = False
    try:
        if before.version != after.version:
            await chain.step(
                SCORER_VERSION, _version_reason(before, after), state, before.inputs.now
            )
        else:
            await chain.step(
                UNEXPLAINED,
                f"Version {after.version} gave another value for exactly the same records at "
                "the same time: the scorer is not deterministic, or it changed without a "
                "version bump.",
                state,
                before.inputs.now,
            )
            unversioned = bool(chain.causes)
        if after.inputs.now != before.inputs.now:
            span = _span(after.inputs.now - before.inputs.now)
            reason = f"{span} passed: the same records, scored {span} later."
            await chain.step(TIME_PASSED, reason, state, after.inputs.now)
        for step in _record_steps(state, after.inputs):
            step.apply(state)
            await chain.step(step.kind, step.reason, state, after.inputs.now, step.ref)
    except ScorerError as exc:
        chain.causes += unexplained(
            after.value - chain.value,
            f"coop could not re-run the scorer to explain this part ({exc.code}).",
        )
        return Decomposition(largest_first(chain.causes), unversioned)
    rerun = after.value - chain.value
    if abs(rerun) > EPSILON:
        unversioned = True
        chain.causes += unexplained(
            rerun,
            f"Re-running version {after.version} on exactly these records gave "
            f"{chain.value:.6g} instead of {after.value:.6g}: the scorer is not deterministic.",
        )
    return Decomposition(largest_first(chain.causes), unversioned)
