"""Consent for new scorer versions: one that reads more waits for the member; one that reads
the same or less runs at once, with a note."""

from __future__ import annotations

import uuid

import pytest

from coop.errors import NotFoundError
from coop.scoring import service, versions
from coop.scoring.models import Score, ScorerConsent, ScorerConsentEvent
from coop.scoring.runner import InProcessRunner
from coop.vault import Vault
from tests.scoring.factories import make_member
from tests.scoring.test_service import DecayScorer, compute, member_records


class WiderDecayScorer(DecayScorer):
    version = "3.0"
    reads = ("post", "activity")


class TextDecayScorer(DecayScorer):
    version = "3.1"
    needs_text = True


class NarrowerDecayScorer(DecayScorer):
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
    assert what in pending["decay"].what_is_new()
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


async def test_a_version_that_reads_less_runs_at_once_with_a_note(
    vault: Vault, member: uuid.UUID
) -> None:
    wider = runner_of(WiderDecayScorer)
    await versions.accept_version(member_id=member, meta=wider.meta("decay"))
    await compute(vault, wider, member, member_records(3))
    outcome = await compute(vault, runner_of(NarrowerDecayScorer), member, member_records(3))
    assert outcome.status == "stored"
    events = await service.list_consent_events(member_id=member, scorer="decay")
    note = "no longer reads your public activity (dates and types, no content)"
    assert (events[-1].action, events[-1].note) == ("updated", note)
    consent = await ScorerConsent.get(member_id=member, scorer="decay")
    assert (consent.accepted_version, consent.accepted_reads) == ("4.0", "post")
    assert not (await current(vault, member)).stale


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
