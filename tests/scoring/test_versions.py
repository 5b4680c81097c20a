"""Consent for new scorer versions: one that reads more waits for the member; one that reads
the same or less runs at once, with a note."""

from __future__ import annotations

import uuid

import pytest

from coop.errors import ConflictError, NotFoundError
from coop.scoring import previews, service, versions
from coop.scoring.models import Score, ScorePreview, ScorerConsent, ScorerConsentEvent
from coop.scoring.runner import InProcessRunner
from coop.vault import Vault
from tests.scoring.factories import make_member
from tests.scoring.test_service import DecayScorer, DecayScorerV2, compute, member_records


class WiderDecayScorer(DecayScorer):
    version = "3.0"
    reads = ("post", "activity")


class TextDecayScorer(DecayScorer):
    version = "3.1"
    needs_text = True


class NarrowerDecayScorer(DecayScorerV2):  # reads only posts again, and weighs them x1.5
    version = "4.0"


def runner_of(scorer: type) -> InProcessRunner:
    runner = InProcessRunner()
    runner.add(scorer)
    return runner


@pytest.fixture
async def member(db: str, vault: Vault) -> uuid.UUID:
    member = await make_member(vault)
    await service.enable_scorer(member_id=member, meta=runner_of(DecayScorer).meta("decay"))
    return member


async def current(vault: Vault, member: uuid.UUID) -> service.ScoreView:
    [view] = await service.list_current_scores(vault=vault, member_id=member)
    return view


@pytest.mark.parametrize(
    ("scorer", "what"),
    [(WiderDecayScorer, "your public activity"), (TextDecayScorer, "the text of your posts")],
)
async def test_a_version_that_reads_more_waits_for_consent_and_the_score_goes_stale(
    vault: Vault, member: uuid.UUID, scorer: type, what: str
) -> None:
    first = await compute(vault, runner_of(DecayScorer), member, member_records(3))
    upgraded = runner_of(scorer)
    outcome = await compute(vault, upgraded, member, member_records(4))
    assert (outcome.status, outcome.code) == ("dropped", "needs_consent")
    assert await Score.filter(member_id=member).count() == 1  # it never ran
    view = await current(vault, member)
    assert view.id == first.score_id
    assert view.stale
    assert f"Version {scorer.version} also reads {what}" in view.stale_reason
    pending = await versions.pending(member_id=member, metas=[upgraded.meta("decay")])
    assert what in pending["decay"].gap.what_is_new()
    await compute(vault, upgraded, member, member_records(4))  # asked once, not on every run
    events = await service.list_consent_events(member_id=member, scorer="decay")
    assert [e.action for e in events] == ["enabled", "asked"]
    assert events[1].scorer_version == scorer.version

    assert await versions.accept_version(member_id=member, meta=upgraded.meta("decay"))
    again = await compute(vault, upgraded, member, member_records(4))
    assert again.status == "stored"
    view = await current(vault, member)
    assert (view.scorer_version, view.stale) == (scorer.version, False)
    assert view.change is not None
    assert [e.action for e in await service.list_consent_events(member_id=member)][-1] == (
        "accepted"
    )


async def test_a_new_version_is_a_preview_with_causes_until_accepted_with_a_note(
    vault: Vault, member: uuid.UUID
) -> None:
    wider = runner_of(WiderDecayScorer)
    await versions.accept_version(member_id=member, meta=wider.meta("decay"))
    first = await compute(vault, wider, member, member_records(3))
    narrower = runner_of(NarrowerDecayScorer)
    outcome = await compute(vault, narrower, member, member_records(3))
    assert outcome.status == "previewed"
    view = await current(vault, member)
    assert (view.id, view.stale) == (first.score_id, True)  # apps see the current one, stale
    assert "Version 4.0 is installed and waits for your review" in view.stale_reason
    preview = await previews.get(vault=vault, member_id=member, scorer="decay")
    assert preview is not None and preview.version == "4.0"
    assert preview.change is not None
    assert preview.change.previous_value == view.value
    assert [c.kind for c in preview.change.causes] == ["scorer_version"]
    assert preview.change.causes[0].amount == pytest.approx(preview.value - view.value)

    assert await versions.accept_version(member_id=member, meta=narrower.meta("decay"))
    assert await previews.get(vault=vault, member_id=member, scorer="decay") is None
    stored = await compute(vault, narrower, member, member_records(3))
    assert stored.status == "stored"
    accepted = await current(vault, member)
    assert (accepted.scorer_version, accepted.stale) == ("4.0", False)
    assert accepted.value == pytest.approx(preview.value)
    events = await service.list_consent_events(member_id=member, scorer="decay")
    note = "no longer reads your public activity (dates and types, no content)"
    assert (events[-1].action, events[-1].note) == ("accepted", note)
    consent = await ScorerConsent.get(member_id=member, scorer="decay")
    assert (consent.accepted_version, consent.accepted_reads) == ("4.0", "post")


async def test_keeping_the_current_score_freezes_it_until_the_member_accepts(
    vault: Vault, member: uuid.UUID
) -> None:
    first = await compute(vault, runner_of(DecayScorer), member, member_records(3))
    newer = runner_of(NarrowerDecayScorer)
    assert (await compute(vault, newer, member, member_records(3))).status == "previewed"
    await versions.keep_current(member_id=member, meta=newer.meta("decay"))
    assert await previews.get(vault=vault, member_id=member, scorer="decay") is None
    kept = await compute(vault, newer, member, member_records(5))
    assert (kept.status, kept.code) == ("dropped", "kept")
    view = await current(vault, member)
    assert (view.id, view.stale) == (first.score_id, True)
    assert "You kept the last score of version 1.0" in view.stale_reason
    waiting = await versions.pending(member_id=member, metas=[newer.meta("decay")])
    assert waiting["decay"].kept
    assert await versions.accept_version(member_id=member, meta=newer.meta("decay"))
    assert (await compute(vault, newer, member, member_records(5))).status == "stored"
    assert not (await current(vault, member)).stale


async def test_disabling_drops_the_preview_and_declining_needs_a_new_version(
    vault: Vault, member: uuid.UUID
) -> None:
    await compute(vault, runner_of(DecayScorer), member, member_records(3))
    with pytest.raises(ConflictError):
        await versions.keep_current(member_id=member, meta=runner_of(DecayScorer).meta("decay"))
    await compute(vault, runner_of(NarrowerDecayScorer), member, member_records(3))
    assert await ScorePreview.filter(member_id=member).count() == 1
    await service.disable_scorer(member_id=member, scorer="decay")
    assert await ScorePreview.filter(member_id=member).count() == 0


async def test_consents_from_before_versions_were_recorded_use_the_enable_event(
    vault: Vault, member: uuid.UUID
) -> None:
    await ScorerConsent.filter(member_id=member).update(accepted_version="", accepted_reads="")
    outcome = await compute(vault, runner_of(WiderDecayScorer), member, member_records(1))
    assert outcome.code == "needs_consent"  # the enable event said: version 1.0, reads post
    await ScorerConsentEvent.filter(member_id=member).delete()
    await ScorerConsent.filter(member_id=member).update(
        accepted_version="", accepted_reads="", stale_reason=""
    )
    outcome = await compute(vault, runner_of(WiderDecayScorer), member, member_records(1))
    assert outcome.status == "stored"  # nothing recorded at all: what is installed counts


async def test_accepting_needs_the_scorer_enabled(vault: Vault, member: uuid.UUID) -> None:
    await service.disable_scorer(member_id=member, scorer="decay")
    with pytest.raises(NotFoundError):
        await versions.accept_version(
            member_id=member, meta=runner_of(WiderDecayScorer).meta("decay")
        )


async def _settings_match_the_orm(member: uuid.UUID) -> versions.MemberSettings:
    """`member_settings` (one raw statement) says what `list_enabled_scorers` and `pending`
    (the ORM) say, for every installed version tried here."""
    last = None
    for scorer in (DecayScorer, WiderDecayScorer, TextDecayScorer, NarrowerDecayScorer):
        metas = [runner_of(scorer).meta("decay")]
        found = await versions.member_settings(member_id=member, metas=metas)
        assert found.enabled == set(await service.list_enabled_scorers(member_id=member))
        assert found.pending == await versions.pending(member_id=member, metas=metas)
        last = found
    assert last is not None
    return last


async def test_member_settings_read_what_the_orm_reads_in_every_consent_state(
    vault: Vault, member: uuid.UUID
) -> None:
    assert (await _settings_match_the_orm(member)).enabled == {"decay"}
    await compute(vault, runner_of(DecayScorer), member, member_records(3))
    newer = runner_of(NarrowerDecayScorer)
    assert (await compute(vault, newer, member, member_records(3))).status == "previewed"
    assert "decay" in (await _settings_match_the_orm(member)).pending
    await versions.keep_current(member_id=member, meta=newer.meta("decay"))
    assert (await _settings_match_the_orm(member)).pending["decay"].kept
    # A consent from before versions were recorded: the enable event says what was accepted.
    await ScorerConsent.filter(member_id=member).update(accepted_version="", accepted_reads="")
    await _settings_match_the_orm(member)
    await ScorerConsentEvent.filter(member_id=member).delete()
    await _settings_match_the_orm(member)
    await service.disable_scorer(member_id=member, scorer="decay")
    assert await _settings_match_the_orm(member) == versions.MemberSettings(frozenset(), {})
