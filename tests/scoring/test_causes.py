"""Change decomposition: causes always add up to the change, for the reference scorers and for
generated toy scorers, and each cause is labelled by what actually moved the score."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from coop_score_cadence import CadenceScorer
from coop_score_reach import ReachScorer
from hypothesis import given, settings
from hypothesis import strategies as st

from coop.errors import ScorerTimeoutError
from coop.scoring import causes
from coop.scoring.inputs import ScoreInputs
from coop.scoring.runner import InProcessRunner
from coop.scoring.spec import API_VERSION, Contribution, InputRecord, ScoreResult

T0 = datetime.fromisoformat("2026-10-01T12:00:00+00:00")
KINDS = ("post", "repository", "activity")


@dataclass
class ToyScorer:
    """A generated scorer: weighted reactions, decayed, windowed, shaped by one curve."""

    weights: tuple[float, float, float]
    half_life: float
    window: float
    curve: str
    version: str = "1"
    api_version = API_VERSION
    name = "toy"
    title = "Toy"
    description = "A generated scorer."
    reads = KINDS
    range = (0.0, 1000.0)
    needs_text = False
    homepage = ""

    def score(self, records: Sequence[InputRecord], now: datetime) -> ScoreResult:
        parts = []
        for r in records:
            age = (now - r.occurred_at).total_seconds() / 86400
            if age > self.window:
                continue
            raw = sum(
                w * r.counts.get(k, 0)
                for w, k in zip(self.weights, ("favourites", "reblogs", "stars"), strict=True)
            )
            parts.append((raw * 0.5 ** (max(0.0, age) / self.half_life), r))
        total = sum(p for p, _ in parts)
        shaped = {
            "linear": total,
            "log": 100 * math.log10(1 + total),
            "sqrt": 10 * math.sqrt(total),
            "cap": min(total, 150.0),
        }[self.curve]
        value = round(min(1000.0, shaped), 6)
        return ScoreResult(
            value=value,
            contributions=[
                Contribution(amount=round(p, 6), reason="r", ref=r.ref) for p, r in parts
            ]
            + [Contribution(amount=1.0, reason="a group of records")],
        )


counts = st.fixed_dictionaries(
    {k: st.integers(0, 40) for k in ("favourites", "reblogs", "stars", "replies")}
)
record = st.builds(
    lambda kind, days, c: (kind, days, c),
    st.sampled_from(KINDS),
    st.floats(0, 420, allow_nan=False),
    counts,
)
toys = st.builds(
    ToyScorer,
    weights=st.tuples(*(st.floats(0, 5, allow_nan=False) for _ in range(3))),
    half_life=st.floats(1, 90),
    window=st.floats(7, 400),
    curve=st.sampled_from(("linear", "log", "sqrt", "cap")),
)


def make(ref: str, spec: tuple[str, float, dict[str, int]], now: datetime) -> InputRecord:
    kind, days, c = spec
    return InputRecord(ref=ref, kind=kind, occurred_at=now - timedelta(days=days), counts=c)


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[InputRecord], list[InputRecord], datetime]:
    """Two inputs of one member: some records kept, edited, removed, added; time moved on."""
    before = [make(f"r{i}", draw(record), T0) for i in range(draw(st.integers(0, 8)))]
    later = T0 + timedelta(days=draw(st.floats(0, 60, allow_nan=False)))
    after = []
    for r in before:
        fate = draw(st.sampled_from(("keep", "keep", "edit", "remove")))
        if fate == "keep":
            after.append(r)
        elif fate == "edit":
            after.append(InputRecord(r.ref, r.kind, r.occurred_at, draw(counts)))
    after += [make(f"n{i}", draw(record), later) for i in range(draw(st.integers(0, 16)))]
    return before, after, later


def side(scorer: object, records: list[InputRecord], now: datetime) -> causes.Side:
    runner = InProcessRunner()
    meta = runner.add(scorer)
    records = [r for r in records if r.kind in meta.reads]  # as coop hands them over
    value = runner.run_sync(scorer=meta.name, records=records, now=now).value
    ids = {r.ref: f"id-{r.ref}" for r in records}
    used = ScoreInputs(now, meta.reads, meta.needs_text, tuple(records), ids)
    return causes.Side(value=value, version=meta.version, inputs=used)


def runs(scorer: object) -> causes.Run:
    runner = InProcessRunner()
    name = runner.add(scorer).name

    async def run(records: Sequence[InputRecord], now: datetime) -> float:
        return runner.run_sync(scorer=name, records=records, now=now).value

    return run


def total(found: causes.Decomposition) -> float:
    return math.fsum(c.amount for c in found.causes)


def assert_adds_up(found: causes.Decomposition, before: causes.Side, after: causes.Side) -> None:
    assert total(found) == pytest.approx(after.value - before.value, abs=1e-6)
    assert {c.kind for c in found.causes} <= set(causes.KINDS)
    assert len(found.causes) <= causes.MAX_CAUSES
    amounts = [abs(c.amount) for c in found.causes]
    assert amounts == sorted(amounts, reverse=True)


def assert_records_labelled_by_fate(found: causes.Decomposition, after: causes.Side) -> None:
    kept = {r.ref for r in after.inputs.records}
    for c in found.causes:
        if c.ref is not None:
            assert c.record_id == f"id-{c.ref}"
            assert (c.kind == causes.NEW_DATA) == (c.ref in kept)
            assert c.kind in (causes.NEW_DATA, causes.REMOVED_DATA)


@pytest.mark.parametrize("scorer", [ReachScorer, CadenceScorer], ids=["reach", "cadence"])
@settings(max_examples=60, deadline=None)
@given(history=histories())
async def test_reference_scorer_causes_add_up_to_the_change(
    scorer: type, history: tuple[list[InputRecord], list[InputRecord], datetime]
) -> None:
    old, new, later = history
    before, after = side(scorer, old, T0), side(scorer, new, later)
    found = await causes.decompose(before=before, after=after, run=runs(scorer))
    assert_adds_up(found, before, after)
    assert_records_labelled_by_fate(found, after)
    assert not found.unversioned
    assert causes.UNEXPLAINED not in {c.kind for c in found.causes}


@settings(max_examples=80, deadline=None)
@given(history=histories(), old=toys, new=toys, upgraded=st.booleans())
async def test_generated_scorer_causes_add_up_even_across_versions(
    history: tuple[list[InputRecord], list[InputRecord], datetime],
    old: ToyScorer,
    new: ToyScorer,
    upgraded: bool,
) -> None:
    records_before, records_after, later = history
    if upgraded:
        new.version = "2"
    else:
        new = old
    before, after = side(old, records_before, T0), side(new, records_after, later)
    found = await causes.decompose(before=before, after=after, run=runs(new))
    assert_adds_up(found, before, after)
    assert_records_labelled_by_fate(found, after)
    kinds = {c.kind for c in found.causes}
    if not upgraded:
        assert causes.SCORER_VERSION not in kinds
        assert causes.UNEXPLAINED not in kinds
    if later == T0:
        assert causes.TIME_PASSED not in kinds


async def test_one_new_post_a_minute_later_is_new_data_not_ageing_of_the_others() -> None:
    posts = [
        InputRecord(f"p{i}", "post", T0 - timedelta(days=3 * i), {"favourites": 5 + i})
        for i in range(5)
    ]
    later = T0 + timedelta(minutes=1)
    new_post = InputRecord("new", "post", later, {"favourites": 8, "reblogs": 2})
    before, after = side(ReachScorer, posts, T0), side(ReachScorer, [*posts, new_post], later)
    found = await causes.decompose(before=before, after=after, run=runs(ReachScorer))
    assert [(c.kind, c.ref) for c in found.causes] == [
        (causes.NEW_DATA, "new"),
        (causes.TIME_PASSED, None),
    ]
    assert found.causes[0].amount > 0 > found.causes[1].amount
    assert "1 minute passed" in found.causes[1].reason
    assert_adds_up(found, before, after)


async def test_many_changed_records_are_grouped_and_still_add_up() -> None:
    old = [
        InputRecord(f"o{i}", "post", T0 - timedelta(days=i), {"favourites": 3}) for i in range(20)
    ]
    new = old[5:] + [
        InputRecord(f"n{i}", "post", T0, {"favourites": 9}) for i in range(causes.MAX_RECORD_STEPS)
    ]
    before, after = side(ReachScorer, old, T0), side(ReachScorer, new, T0)
    found = await causes.decompose(before=before, after=after, run=runs(ReachScorer))
    assert {(c.kind, c.ref, c.reason) for c in found.causes} == {
        (causes.REMOVED_DATA, None, "5 records are no longer in your data"),
        (causes.NEW_DATA, None, f"{causes.MAX_RECORD_STEPS} new records"),
    }
    assert_adds_up(found, before, after)


async def test_a_scorer_that_is_not_deterministic_is_unexplained_and_flagged() -> None:
    values = iter([10.0, 12.5, 13.0])

    async def drifting(records: Sequence[InputRecord], now: datetime) -> float:
        return next(values)

    before, after = side(ReachScorer, [], T0), side(ReachScorer, [], T0)
    before = causes.Side(9.0, "1.0.0", before.inputs)
    after = causes.Side(11.0, "1.0.0", after.inputs)
    found = await causes.decompose(before=before, after=after, run=drifting)
    assert found.unversioned
    assert {c.kind for c in found.causes} == {causes.UNEXPLAINED}
    assert "without a version bump" in found.causes[0].reason  # 9 -> 10 re-running the same
    assert "not deterministic" in found.causes[1].reason  # 10 -> 11 re-running the final state
    assert total(found) == pytest.approx(2.0)


async def test_a_rerun_that_fails_leaves_the_rest_unexplained_not_mislabelled() -> None:
    async def failing(records: Sequence[InputRecord], now: datetime) -> float:
        raise ScorerTimeoutError()

    before = side(ReachScorer, [], T0)
    after = side(ReachScorer, [InputRecord("x", "post", T0, {"stars": 9})], T0)
    found = await causes.decompose(before=before, after=after, run=failing)
    assert [c.kind for c in found.causes] == [causes.UNEXPLAINED]
    assert "plugin_timeout" in found.causes[0].reason
    assert_adds_up(found, before, after)
