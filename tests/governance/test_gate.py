"""With governance on, only versions the members approved are offered and run; approval
enables nothing on anyone's data; a version waiting or rejected leaves the last score frozen
and labelled. With governance off (the default) every installed scorer is offered."""

from __future__ import annotations

from dataclasses import replace

import pytest

from coop.config import Settings
from coop.errors import ScorerNotApprovedError
from coop.governance import service as governance
from coop.governance.models import Approval, GovernanceState, Proposal
from coop.jobs import governance as governance_flow
from coop.jobs.scoring import flow_for
from coop.scoring import service as scoring
from coop.scoring.models import Score
from coop.scoring.runner import InProcessRunner
from coop.vault import Vault
from tests.api.conftest import InProcessFlow
from tests.api.factories import make_member
from tests.governance.conftest import RULES
from tests.scoring.test_service import DecayScorer, DecayScorerV2, compute, member_records


def flow_with(vault: Vault, *scorers: type, governance_on: bool = True) -> InProcessFlow:
    runner = InProcessRunner()
    for scorer in scorers:
        runner.add(scorer)
    return InProcessFlow(vault=vault, runner=runner, governance=governance_on, rules=RULES)


async def test_governance_off_offers_every_installed_scorer_as_before(
    db: str, vault: Vault
) -> None:
    flow = flow_with(vault, DecayScorer, governance_on=False)
    assert [m.name for m in await flow.available()] == ["decay"]
    assert not await Approval.exists() and not await Proposal.exists()


async def test_scorers_installed_when_governance_is_switched_on_count_as_approved(
    db: str, vault: Vault
) -> None:
    member = await make_member(vault)
    flow = flow_with(vault, DecayScorer)
    assert [m.name for m in await flow.available()] == ["decay"]
    approval = await Approval.get(scorer="decay")
    assert (approval.version, approval.source) == ("1.0", "baseline")
    assert not await Proposal.exists()
    # Approval enabled nothing: the member still chooses.
    assert await scoring.list_enabled_scorers(member_id=member.id) == []


async def test_start_up_records_the_baseline_so_a_scorer_installed_later_needs_a_vote(
    db: str, settings: Settings, vault: Vault
) -> None:
    """Governance on, server restarted, no page visited, then a scorer installed: the
    baseline was taken at start-up (before, the first listing took it, and that listing
    would have counted the newly installed scorer as approved)."""
    from coop.app import build_app

    off = build_app(settings, manage_db=False)
    async with off.router.lifespan_context(off):
        pass
    assert not await GovernanceState.exists()  # governance off: nothing recorded

    app = build_app(replace(settings, governance=True), manage_db=False)
    async with app.router.lifespan_context(app):
        assert await GovernanceState.exists()
        installed = await flow_for(app.state.runtime).installed()
        assert installed, "the reference scorers are installed in the test environment"
        approved = {(a.scorer, a.version, a.source) for a in await Approval.all()}
        assert approved == {(m.name, m.version, "baseline") for m in installed}

    newly_installed = flow_with(vault, DecayScorer)  # a later process with one more scorer
    assert await newly_installed.available() == []
    [proposal] = await governance.list_proposals()
    assert (proposal.scorer, proposal.kind, proposal.opened_by) == ("decay", "install", "discovery")


async def test_a_new_version_is_proposed_on_discovery_and_not_offered_until_approved(
    db: str, vault: Vault
) -> None:
    member = await make_member(vault)
    await flow_with(vault, DecayScorer).available()  # the baseline: 1.0
    original = flow_with(vault, DecayScorer)
    await scoring.enable_scorer(member_id=member.id, meta=original.runner.meta("decay"))
    assert isinstance(original.runner, InProcessRunner)
    first = await compute(vault, original.runner, member.id, member_records(3))
    assert first.status == "stored"

    upgraded = flow_with(vault, DecayScorerV2)
    assert await upgraded.available() == []
    [proposal] = await governance.list_proposals()
    assert (proposal.kind, proposal.version, proposal.opened_by) == ("upgrade", "2.0", "discovery")
    newcomer = await make_member(vault)
    with pytest.raises(ScorerNotApprovedError) as refused:
        await upgraded.enable(member_id=newcomer.id, scorer="decay")
    assert refused.value.code == "scorer_not_approved"
    assert await scoring.list_enabled_scorers(member_id=newcomer.id) == []

    [outcome] = await upgraded.recompute_member(member_id=member.id)
    assert (outcome.status, outcome.code) == ("dropped", "scorer_not_approved")
    [current] = await scoring.list_current_scores(vault=vault, member_id=member.id)
    assert current.id == first.score_id and current.scorer_version == "1.0"
    assert "waits for the cooperative's vote" in current.stale_reason

    await governance.cast_vote(
        vault=vault, member_id=member.id, proposal_id=proposal.id, choice="no"
    )
    await governance_flow.close_proposal(proposal_id=proposal.id, now=proposal.closes_at)
    [current] = await scoring.list_current_scores(vault=vault, member_id=member.id)
    assert "did not approve version 2.0" in current.stale_reason
    assert await Score.filter(member_id=member.id).count() == 1  # frozen, never deleted


async def test_an_approved_version_runs_for_members_who_enabled_the_scorer(
    db: str, vault: Vault
) -> None:
    member = await make_member(vault)
    await flow_with(vault, DecayScorer).available()
    upgraded = flow_with(vault, DecayScorerV2)
    await upgraded.available()
    [proposal] = await governance.list_proposals()
    await governance.cast_vote(
        vault=vault, member_id=member.id, proposal_id=proposal.id, choice="yes"
    )
    await governance_flow.close_proposal(proposal_id=proposal.id, now=proposal.closes_at)
    assert [m.version for m in await upgraded.available()] == ["2.0"]
    assert await scoring.list_enabled_scorers(member_id=member.id) == []  # nothing enabled
    outcomes = await upgraded.enable(member_id=member.id, scorer="decay")
    assert [(o.status, o.code) for o in outcomes] == [("stored", "")]
    assert await Score.filter(id=outcomes[0].score_id, scorer_version="2.0").exists()
