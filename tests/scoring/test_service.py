"""Scores: consent with history, storage with sealed explanations, determinism, attribution."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest

from coop.connectors.models import Record
from coop.errors import IntegrityError, NotFoundError
from coop.members.models import Member
from coop.scoring import drift, inputs, service, versions
from coop.scoring.changes import Change
from coop.scoring.models import Score, ScorerConsent
from coop.scoring.runner import InProcessRunner
from coop.scoring.sandbox import Sandbox
from coop.scoring.spec import API_VERSION, Contribution, InputRecord, ScoreResult
from coop.types import utcnow
from coop.vault import Vault
from tests.scoring.factories import make_member

NOW = datetime.fromisoformat("2026-11-01T12:00:00+00:00")


class DecayScorer:
    """Favourites, halving every 10 days: enough to exercise every attribution label."""

    api_version = API_VERSION
    name = "decay"
    version = "1.0"
    title = "Decay"
    description = "Favourites that halve every 10 days."
    reads = ("post",)
    range = (0.0, 1000.0)
    needs_text = False
    homepage = ""

    def score(self, records: Sequence[InputRecord], now: datetime) -> ScoreResult:
        parts = [
            (r.counts.get("favourites", 0) * 0.5 ** ((now - r.occurred_at).days / 10), r)
            for r in records
            if (now - r.occurred_at).days <= 30
        ]
        return ScoreResult(
            value=min(1000.0, sum(p for p, _ in parts)),
            contributions=[
                Contribution(amount=p, reason="favourites", ref=r.ref) for p, r in parts
            ],
            reasons=[f"{len(parts)} posts"],
        )


class DecayScorerV2(DecayScorer):
    version = "2.0"

    def score(self, records: Sequence[InputRecord], now: datetime) -> ScoreResult:
        result = super().score(records, now)
        return dataclasses.replace(result, value=min(1000.0, result.value * 1.5))


class DoubledDecayScorer(DecayScorer):
    def score(self, records: Sequence[InputRecord], now: datetime) -> ScoreResult:
        result = super().score(records, now)
        return dataclasses.replace(result, value=min(1000.0, result.value * 2))


def member_records(n: int, *, start: int = 0, age_days: float = 1.0) -> list[service.MemberRecord]:
    return [
        service.MemberRecord(
            record_id=uuid.uuid5(uuid.NAMESPACE_URL, f"record-{start + i}"),
            kind="post",
            occurred_at=NOW - timedelta(days=age_days + i),
            counts={"favourites": 10},
            text="never shown to scorers that do not ask",
        )
        for i in range(n)
    ]


@pytest.fixture
def runner() -> InProcessRunner:
    runner = InProcessRunner()
    runner.add(DecayScorer)
    return runner


@pytest.fixture
async def member(db: str, vault: Vault) -> uuid.UUID:
    return await make_member(vault)


async def enable(member: uuid.UUID, runner: InProcessRunner) -> None:
    await service.enable_scorer(member_id=member, meta=runner.meta("decay"))


async def compute(
    vault: Vault,
    runner: InProcessRunner,
    member: uuid.UUID,
    records: list[service.MemberRecord],
    now: datetime = NOW,
) -> service.ScoreOutcome:
    return await service.compute_score(
        vault=vault, runner=runner, member_id=member, scorer="decay", records=records, now=now
    )


async def test_enabling_and_disabling_keeps_every_event(
    vault: Vault, runner: InProcessRunner, member: uuid.UUID
) -> None:
    await enable(member, runner)
    await enable(member, runner)  # no-op: already enabled
    await service.disable_scorer(member_id=member, scorer="decay")
    await enable(member, runner)
    events = await service.list_consent_events(member_id=member)
    assert [e.action for e in events] == ["enabled", "disabled", "enabled"]
    assert events[0].reads == ("post",)
    assert events[0].scorer_version == "1.0"
    assert await service.list_enabled_scorers(member_id=member) == ["decay"]


async def test_disabling_a_scorer_deletes_its_scores(
    vault: Vault, runner: InProcessRunner, member: uuid.UUID
) -> None:
    await enable(member, runner)
    await compute(vault, runner, member, member_records(3))
    assert await Score.filter(member_id=member).count() == 1
    deleted = await service.disable_scorer(member_id=member, scorer="decay")
    assert deleted == 1
    assert await Score.filter(member_id=member).count() == 0
    assert await service.list_current_scores(vault=vault, member_id=member) == []


async def test_a_scorer_that_is_not_enabled_stores_nothing(
    vault: Vault, runner: InProcessRunner, member: uuid.UUID
) -> None:
    outcome = await compute(vault, runner, member, member_records(3))
    assert (outcome.status, outcome.code) == ("dropped", "not_enabled")
    assert await Score.all().count() == 0


async def test_stored_score_keeps_value_version_digest_time_and_sealed_explanation(
    vault: Vault, runner: InProcessRunner, member: uuid.UUID
) -> None:
    await enable(member, runner)
    records = member_records(3)
    outcome = await compute(vault, runner, member, records)
    assert outcome.status == "stored"
    row = await Score.get(id=outcome.score_id)
    assert (row.scorer, row.scorer_version) == ("decay", "1.0")
    assert len(row.inputs_digest) == 64
    assert b"favourites" not in bytes(row.explanation_sealed)
    view = await service.get_score(vault=vault, member_id=member, score_id=row.id)
    assert view.explanation is not None
    assert view.explanation.record_count == 3
    linked = {c.record_id for c in view.explanation.contributions}
    assert linked == {str(r.record_id) for r in records}
    assert view.change is None  # the first score has nothing to compare with


async def test_same_inputs_and_version_give_the_identical_score_and_no_new_row(
    vault: Vault, runner: InProcessRunner, member: uuid.UUID
) -> None:
    await enable(member, runner)
    first = await compute(vault, runner, member, member_records(5))
    again = await compute(vault, runner, member, list(reversed(member_records(5))))
    assert again.status == "unchanged"
    assert again.score_id == first.score_id
    assert await Score.filter(member_id=member).count() == 1
    a = runner.run_sync(scorer="decay", records=[], now=NOW)
    b = runner.run_sync(scorer="decay", records=[], now=NOW)
    assert a == b


async def test_refs_are_stable_per_scorer_and_hide_record_ids(
    vault: Vault, runner: InProcessRunner
) -> None:
    records = member_records(2)
    meta = runner.meta("decay")
    first, ids = service.input_records(vault=vault, meta=meta, records=records)
    second, _ = service.input_records(vault=vault, meta=meta, records=records)
    assert [r.ref for r in first] == [r.ref for r in second]
    assert all(str(r.record_id) not in {i.ref for i in first} for r in records)
    assert all(i.text is None for i in first)  # needs_text is False
    assert set(ids.values()) == {str(r.record_id) for r in records}


def kinds_and_records(change: Change) -> list[tuple[str, str | None]]:
    return [(c.kind, c.record_id) for c in change.causes]


def adds_up(change: Change) -> bool:
    return abs(sum(c.amount for c in change.causes) - change.delta) <= 1e-9


async def test_a_new_record_is_the_cause_of_its_change_and_older_ones_are_not_blamed(
    vault: Vault, runner: InProcessRunner, member: uuid.UUID
) -> None:
    await enable(member, runner)
    await compute(vault, runner, member, member_records(2))
    outcome = await compute(vault, runner, member, member_records(3))
    view = await service.get_score(vault=vault, member_id=member, score_id=outcome.score_id)
    assert view.change is not None
    added = str(member_records(3)[2].record_id)
    assert kinds_and_records(view.change) == [("new_data", added)]
    assert view.change.delta > 0
    assert adds_up(view.change)
    assert view.change.causes[0].ref is not None


async def test_time_passing_with_the_same_records_is_time_passed(
    vault: Vault, runner: InProcessRunner, member: uuid.UUID
) -> None:
    await enable(member, runner)
    records = member_records(3)
    await compute(vault, runner, member, records)
    later = await compute(vault, runner, member, records, now=NOW + timedelta(days=10))
    assert later.status == "stored"
    view = await service.get_score(vault=vault, member_id=member, score_id=later.score_id)
    assert view.change is not None
    assert kinds_and_records(view.change) == [("time_passed", None)]
    assert view.change.delta < 0
    assert "10 days passed" in view.change.causes[0].reason
    assert adds_up(view.change)


async def test_removed_and_edited_records_are_named_one_by_one(
    vault: Vault, runner: InProcessRunner, member: uuid.UUID
) -> None:
    await enable(member, runner)
    records = member_records(3)
    await compute(vault, runner, member, records)
    edited = dataclasses.replace(records[0], counts={"favourites": 30})
    outcome = await compute(vault, runner, member, [edited, records[1]])
    view = await service.get_score(vault=vault, member_id=member, score_id=outcome.score_id)
    assert view.change is not None
    found = {(c.kind, c.record_id): c for c in view.change.causes}
    assert set(found) == {
        ("new_data", str(records[0].record_id)),
        ("removed_data", str(records[2].record_id)),
    }
    assert found[("new_data", str(records[0].record_id))].amount > 0
    assert "10 favourites → 30 favourites" in found[("new_data", str(records[0].record_id))].reason
    assert found[("removed_data", str(records[2].record_id))].amount < 0
    assert adds_up(view.change)


async def test_a_new_scorer_version_alone_is_scorer_version_with_both_versions(
    vault: Vault, runner: InProcessRunner, member: uuid.UUID
) -> None:
    await enable(member, runner)
    records = member_records(3)
    await compute(vault, runner, member, records)
    upgraded = InProcessRunner()
    upgraded.add(DecayScorerV2)
    await versions.accept_version(member_id=member, meta=upgraded.meta("decay"))
    outcome = await compute(vault, upgraded, member, records + member_records(1, start=9))
    assert outcome.status == "stored"
    view = await service.get_score(vault=vault, member_id=member, score_id=outcome.score_id)
    assert view.change is not None
    assert [c.kind for c in view.change.causes] == ["new_data", "scorer_version"]
    assert "Version 1.0 → 2.0" in view.change.causes[1].reason
    assert (view.change.previous_version, view.change.version) == ("1.0", "2.0")
    assert adds_up(view.change)


async def test_a_formula_changed_without_a_version_bump_is_unexplained_and_flagged(
    vault: Vault, runner: InProcessRunner, member: uuid.UUID
) -> None:
    await enable(member, runner)
    records = member_records(3)
    await compute(vault, runner, member, records)
    changed = InProcessRunner()
    changed.add(DoubledDecayScorer)  # same name, same version 1.0, another formula
    outcome = await compute(vault, changed, member, records, now=NOW + timedelta(days=1))
    view = await service.get_score(vault=vault, member_id=member, score_id=outcome.score_id)
    assert view.change is not None
    assert view.change.unversioned
    [found] = await drift.list_all()  # the operator sees it too (coop plugins list)
    assert (found.scorer, found.version, found.seen) == ("decay", "1.0", 1)
    assert "gave another value for the same inputs 1 time" in found.warning()
    assert view.change.causes[0].kind == "unexplained"
    assert "without a version bump" in view.change.causes[0].reason
    assert {c.kind for c in view.change.causes} <= {"unexplained", "time_passed"}
    assert adds_up(view.change)


async def test_a_change_from_a_score_without_stored_inputs_is_unexplained(
    vault: Vault, runner: InProcessRunner, member: uuid.UUID
) -> None:
    await enable(member, runner)
    first = await compute(vault, runner, member, member_records(2))
    await Score.filter(id=first.score_id).update(inputs_sealed=None)  # as an older coop left it
    outcome = await compute(vault, runner, member, member_records(3))
    view = await service.get_score(vault=vault, member_id=member, score_id=outcome.score_id)
    assert view.change is not None
    assert [c.kind for c in view.change.causes] == ["unexplained"]
    assert adds_up(view.change)


async def test_inputs_are_stored_sealed_and_exact(
    vault: Vault, runner: InProcessRunner, member: uuid.UUID
) -> None:
    await enable(member, runner)
    outcome = await compute(vault, runner, member, member_records(2))
    row = await Score.get(id=outcome.score_id)
    assert row.inputs_sealed is not None
    cipher = await vault.cipher_for(member)
    used = inputs.unpack(
        cipher.open(row.inputs_sealed, table="score", column="inputs_sealed", row=row.id)
    )
    assert used.now == NOW
    assert used.reads == ("post",)
    assert len(used.records) == 2
    assert set(used.record_ids.values()) == {str(r.record_id) for r in member_records(2)}
    assert all(r.text is None for r in used.records)


async def test_history_is_newest_first_and_scores_are_the_members_own(
    vault: Vault, runner: InProcessRunner, member: uuid.UUID
) -> None:
    await enable(member, runner)
    await compute(vault, runner, member, member_records(1))
    second = await compute(vault, runner, member, member_records(2))
    history = await service.list_history(vault=vault, member_id=member, scorer="decay")
    assert history[0].id == second.score_id
    assert len(history) == 2
    other = await make_member(vault)
    with pytest.raises(NotFoundError) as caught:
        await service.get_score(vault=vault, member_id=other, score_id=second.score_id)
    assert caught.value.code == "not_found"


async def test_scores_go_with_the_member(
    vault: Vault, runner: InProcessRunner, member: uuid.UUID
) -> None:
    await enable(member, runner)
    await compute(vault, runner, member, member_records(2))
    await Member.filter(id=member).delete()
    assert await Score.all().count() == 0
    assert await ScorerConsent.all().count() == 0


async def test_a_result_for_a_member_deleted_mid_run_is_dropped(
    vault: Vault, runner: InProcessRunner, member: uuid.UUID
) -> None:
    await enable(member, runner)

    class Deleting(InProcessRunner):
        async def run(self, **kwargs):  # type: ignore[no-untyped-def]
            await vault.shred(member)
            await Member.filter(id=member).delete()
            return await super().run(**kwargs)

    deleting = Deleting()
    deleting.add(DecayScorer)
    outcome = await compute(vault, deleting, member, member_records(2))
    assert outcome.status == "dropped"
    assert await Score.all().count() == 0


async def test_invalid_plugin_output_stores_nothing_and_is_recorded(
    vault: Vault, sandbox: Sandbox, member: uuid.UUID
) -> None:
    await service.enable_scorer(member_id=member, meta=sandbox.meta("hostile"))
    records = [
        service.MemberRecord(uuid.uuid4(), "post", NOW - timedelta(days=1), {}, "nan"),
    ]
    outcome = await service.compute_score(
        vault=vault, runner=sandbox, member_id=member, scorer="hostile", records=records, now=NOW
    )
    assert (outcome.status, outcome.code) == ("failed", "invalid_plugin_output")
    assert await Score.all().count() == 0
    runs = await service.list_last_runs(member_id=member)
    assert runs["hostile"][1] == "invalid_plugin_output"
    assert runs["hostile"][0] is not None and runs["hostile"][0] <= utcnow()


async def test_record_rows_are_not_touched_by_scoring(
    vault: Vault, runner: InProcessRunner, member: uuid.UUID
) -> None:
    await enable(member, runner)
    await compute(vault, runner, member, member_records(2))
    assert await Record.all().count() == 0


async def test_several_explanations_open_at_once_and_only_for_their_member(
    vault: Vault, runner: InProcessRunner, member: uuid.UUID
) -> None:
    await enable(member, runner)
    first = await compute(vault, runner, member, member_records(1))
    second = await compute(vault, runner, member, member_records(3))
    assert first.score_id is not None and second.score_id is not None
    rows = await Score.filter(id__in=[first.score_id, second.score_id])
    sealed = {row.id: bytes(row.explanation_sealed) for row in rows}
    opened = await service.open_explanations(vault=vault, member_id=member, sealed=sealed)
    for score_id in (first.score_id, second.score_id):
        view = await service.get_score(vault=vault, member_id=member, score_id=score_id)
        assert opened[score_id] == view.explanation
    assert await service.open_explanations(vault=vault, member_id=member, sealed={}) == {}
    other = await make_member(vault)
    with pytest.raises(IntegrityError) as caught:
        await service.open_explanations(vault=vault, member_id=other, sealed=sealed)
    assert caught.value.code == "integrity_error"
    swapped = {first.score_id: sealed[second.score_id]}  # a blob moved to another row
    with pytest.raises(IntegrityError):
        await service.open_explanations(vault=vault, member_id=member, sealed=swapped)


async def test_a_score_recorded_in_the_same_instant_is_stored_just_after_the_previous(
    vault: Vault, runner: InProcessRunner, member: uuid.UUID
) -> None:
    await enable(member, runner)
    first = await compute(vault, runner, member, member_records(1))
    second = await compute(vault, runner, member, member_records(2))  # the same `now`
    older = await compute(vault, runner, member, member_records(3), now=NOW - timedelta(days=400))
    history = await service.list_history(vault=vault, member_id=member, scorer="decay")
    assert [v.id for v in history] == [older.score_id, second.score_id, first.score_id]
    times = [v.computed_at for v in reversed(history)]
    assert times[1] - times[0] == timedelta(microseconds=1) == times[2] - times[1]
