"""The scoring flow end to end: stored connector records -> sandboxed reference plugins ->
stored scores with explanations and attributed history, after each sync and on demand."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

import pytest

from coop.config import Settings
from coop.connectors import spec
from coop.connectors.models import Record
from coop.jobs.engine import SyncOutcome
from coop.jobs.scoring import ScoringFlow
from coop.scoring import service
from coop.scoring.models import Score
from coop.scoring.sandbox import Sandbox
from coop.types import clock, utcnow
from coop.vault import Vault
from tests.scoring.factories import add_records, make_member, posts

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def flow(vault: Vault, sandbox: Sandbox) -> ScoringFlow:
    return ScoringFlow(vault=vault, runner=sandbox)


async def test_reference_plugins_score_synced_records_with_explanations(
    db: str, vault: Vault, flow: ScoringFlow
) -> None:
    member = await make_member(vault)
    ids = await add_records(vault, member, posts(utcnow(), 30, every_days=3))
    first = await flow.enable(member_id=member, scorer="reach")
    second = await flow.enable(member_id=member, scorer="cadence")
    assert [o.status for o in first + second] == ["stored", "stored"]
    current = {
        s.scorer: s for s in await service.list_current_scores(vault=vault, member_id=member)
    }
    assert set(current) == {"reach", "cadence"}
    reach = current["reach"]
    assert 0 < reach.value <= 100
    assert reach.scorer_version == "1.1.1"
    assert reach.explanation is not None
    linked = {c.record_id for c in reach.explanation.contributions}
    assert linked and linked <= {str(i) for i in ids}
    assert any("decayed" in r for r in reach.explanation.reasons)
    cadence = current["cadence"]
    assert cadence.explanation is not None
    assert len(cadence.explanation.breakdown) == 12


async def test_each_sync_rescores_and_history_says_why(
    db: str, vault: Vault, flow: ScoringFlow
) -> None:
    member = await make_member(vault)
    await add_records(vault, member, posts(utcnow(), 5))
    await flow.enable(member_id=member, scorer="reach")
    new_ids = await add_records(vault, member, posts(utcnow(), 2, start=100))
    await flow.after_sync(SyncOutcome(uuid.uuid4(), member, "feed", "ok", records_added=2))
    history = await service.list_history(vault=vault, member_id=member, scorer="reach")
    assert len(history) == 2
    change = history[0].change
    assert change is not None
    assert {c.record_id for c in change.causes if c.kind == "new_data"} == {str(i) for i in new_ids}
    assert abs(sum(c.amount for c in change.causes) - change.delta) <= 1e-9


async def test_recompute_later_attributes_decay_to_time_passed(
    db: str, vault: Vault, flow: ScoringFlow
) -> None:
    member = await make_member(vault)
    await add_records(vault, member, posts(utcnow(), 5))
    await flow.enable(member_id=member, scorer="reach")
    [first] = await service.list_history(vault=vault, member_id=member, scorer="reach")
    # The same instant (reach decays continuously: even a second later may round differently).
    again = await flow.recompute_member(member_id=member, now=first.computed_at)
    assert [o.status for o in again] == ["unchanged"]
    clock.advance(timedelta(days=20).total_seconds())
    later = await flow.recompute_member(member_id=member)
    assert [o.status for o in later] == ["stored"]
    latest = (await service.list_history(vault=vault, member_id=member, scorer="reach"))[0]
    assert latest.change is not None
    assert [c.kind for c in latest.change.causes] == ["time_passed"]
    assert latest.change.causes[0].amount == pytest.approx(latest.change.delta)
    assert latest.change.delta < 0


async def test_a_hostile_scorer_does_not_stop_the_others(
    db: str, vault: Vault, flow: ScoringFlow, sandbox: Sandbox
) -> None:
    member = await make_member(vault)
    command = spec.Record(
        kind="post", external_id="x", occurred_at=utcnow(), counts={"reblogs": 2}, text="segfault"
    )
    await add_records(vault, member, [command])
    for name in ("reach", "hostile", "cadence"):
        await service.enable_scorer(member_id=member, meta=sandbox.meta(name))
    outcomes = {o.scorer: o for o in await flow.recompute_member(member_id=member)}
    assert (outcomes["hostile"].status, outcomes["hostile"].code) == ("failed", "plugin_error")
    assert outcomes["reach"].status == "stored"
    assert outcomes["cadence"].status == "stored"
    assert await Record.filter(member_id=member).count() == 1


async def test_scorers_only_get_text_when_they_ask(db: str, vault: Vault, sandbox: Sandbox) -> None:
    member = await make_member(vault)
    await add_records(vault, member, posts(utcnow(), 1))
    records = [
        service.MemberRecord(uuid.uuid4(), "post", utcnow(), {}, "secret"),
        service.MemberRecord(uuid.uuid4(), "audience", utcnow(), {"followers": 3}, None),
    ]
    reach_inputs, _ = service.input_records(
        vault=vault, meta=sandbox.meta("reach"), records=records
    )
    assert [(r.kind, r.text) for r in reach_inputs] == [("post", None)]
    hostile_inputs, _ = service.input_records(
        vault=vault, meta=sandbox.meta("hostile"), records=records
    )
    assert [r.text for r in hostile_inputs] == ["secret", None]


async def test_an_uninstalled_scorer_is_skipped_and_its_scores_kept(
    db: str, vault: Vault, flow: ScoringFlow, sandbox: Sandbox
) -> None:
    member = await make_member(vault)
    await add_records(vault, member, posts(utcnow(), 3))
    await flow.enable(member_id=member, scorer="reach")
    ghost = dataclasses.replace(sandbox.meta("polite"), name="uninstalled")
    await service.enable_scorer(member_id=member, meta=ghost)
    outcomes = await flow.recompute_member(member_id=member, now=utcnow() + timedelta(days=1))
    assert [o.scorer for o in outcomes] == ["reach"]
    assert "uninstalled" in await service.list_enabled_scorers(member_id=member)


def test_the_app_rescores_after_every_sync(settings: Settings) -> None:
    from coop.app import build_app

    app = build_app(settings, manage_db=False)
    runtime = app.state.runtime
    flow = runtime.scoring
    assert flow.after_sync in runtime.jobs.engine.after_sync


async def test_syncs_without_new_data_store_no_new_score_rows_and_new_data_does(
    db: str, vault: Vault, flow: ScoringFlow, settings: Settings
) -> None:
    """reach decays with time: each sync gives a slightly lower value for the same inputs.
    Within the tolerance (and the same band) no row is stored; new data, or enough time for
    the value to move past the tolerance, stores one whose change says why."""
    member = await make_member(vault)
    await add_records(vault, member, posts(utcnow(), 5))
    [first] = await flow.enable(member_id=member, scorer="reach")
    assert first.status == "stored"
    synced = SyncOutcome(uuid.uuid4(), member, "feed", "ok", records_added=0)
    for _ in range(5):
        clock.advance(settings.sync_interval_seconds)
        await flow.after_sync(synced)
        [again] = await flow.recompute_member(member_id=member)
        assert again.status == "unchanged"
    assert await Score.filter(member_id=member).count() == 1
    current = (await service.list_current_scores(vault=vault, member_id=member))[0]
    assert current.id == first.score_id

    new_ids = await add_records(vault, member, posts(utcnow(), 2, start=100))
    await flow.after_sync(SyncOutcome(uuid.uuid4(), member, "feed", "ok", records_added=2))
    assert await Score.filter(member_id=member).count() == 2
    latest = (await service.list_history(vault=vault, member_id=member, scorer="reach"))[0]
    assert latest.change is not None
    assert {c.record_id for c in latest.change.causes if c.kind == "new_data"} == {
        str(i) for i in new_ids
    }

    clock.advance(timedelta(days=10).total_seconds())
    [decayed] = await flow.recompute_member(member_id=member)
    assert decayed.status == "stored"
    newest = (await service.list_history(vault=vault, member_id=member, scorer="reach"))[0]
    assert newest.change is not None
    assert [c.kind for c in newest.change.causes] == ["time_passed"]
    assert abs(newest.change.delta) > service.value_tolerance(flow.runner.meta("reach"))
