"""Preview statistics on a proposal: only from members who chose to share, computed in the
scorer runner through the job function, shown only from the documented minimum on, and never
an individual's score."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from coop.config import Settings
from coop.connectors import spec
from coop.errors import ConfigError
from coop.governance import service as governance
from coop.governance import statistics
from coop.governance.models import Proposal
from coop.jobs.statistics import preview_statistics
from coop.scoring import service as scoring
from coop.types import utcnow
from coop.vault import Vault
from tests.api.factories import make_member
from tests.governance.test_gate import flow_with
from tests.scoring.factories import add_records
from tests.scoring.test_service import DecayScorer, DecayScorerV2


def posts(n: int) -> list[spec.Record]:
    now = utcnow()
    return [
        spec.Record(
            external_id=f"p{i}",
            kind="post",
            occurred_at=now - timedelta(days=1 + i),
            counts={"favourites": 10},
        )
        for i in range(n)
    ]


async def _members_with_scores(vault: Vault, n: int, *, share: bool) -> list[object]:
    flow = flow_with(vault, DecayScorer)
    await flow.available()  # the baseline: decay 1.0 is approved
    members = []
    for i in range(n):
        member = await make_member(vault)
        await add_records(vault, member.id, posts(i + 1))
        await flow.enable(member_id=member.id, scorer="decay")
        if share:
            await statistics.set_sharing(member_id=member.id, share=True)
        members.append(member)
    return members


async def test_statistics_come_from_sharing_members_as_totals_only(db: str, vault: Vault) -> None:
    members = await _members_with_scores(vault, 5, share=True)
    await _members_with_scores(vault, 2, share=False)  # never counted
    upgraded = flow_with(vault, DecayScorerV2)
    await upgraded.available()  # discovery opens the upgrade's proposal
    [proposal] = await governance.list_proposals()
    summary = await preview_statistics(flow=upgraded, proposal_id=proposal.id, minimum=5)
    assert (summary["sharers"], summary["shown"], summary["compared"]) == (5, True, 5)
    assert (summary["up"], summary["down"], summary["same"]) == (5, 0, 0)  # v2 is x1.5
    current = [await scoring.latest_value(member_id=m.id, scorer="decay") for m in members]
    values = [c[0] for c in current if c is not None]
    assert summary["mean"] == round(1.5 * sum(values) / 5, 1)
    assert summary["mean_change"] == round(0.5 * sum(values) / 5, 1)
    stored = (await governance.get_proposal(proposal_id=proposal.id)).statistics
    assert set(stored) == {
        "sharers",
        "minimum",
        "shown",
        "mean",
        "compared",
        "up",
        "down",
        "same",
        "mean_change",
        "computed_at",
    }
    # No member's own score, old or would-be, is kept: only the mean of five different ones.
    row = json.dumps((await Proposal.get(id=proposal.id)).statistics)
    for value in values:
        assert str(round(value, 1)) not in row and str(round(1.5 * value, 1)) not in row
    assert all(str(m.id) not in row for m in members)


async def test_below_the_minimum_nothing_but_the_count_is_kept(db: str, vault: Vault) -> None:
    await _members_with_scores(vault, 4, share=True)
    upgraded = flow_with(vault, DecayScorerV2)
    await upgraded.available()
    [proposal] = await governance.list_proposals()
    summary = await preview_statistics(flow=upgraded, proposal_id=proposal.id, minimum=5)
    assert summary == {"sharers": 4, "minimum": 5, "shown": False}
    assert "mean" not in (await governance.get_proposal(proposal_id=proposal.id)).statistics


async def test_a_member_who_stops_sharing_is_not_counted(db: str, vault: Vault) -> None:
    members = await _members_with_scores(vault, 5, share=True)
    await statistics.set_sharing(member_id=members[0].id, share=False)
    assert not await statistics.is_sharing(member_id=members[0].id)
    upgraded = flow_with(vault, DecayScorerV2)
    await upgraded.available()
    [proposal] = await governance.list_proposals()
    summary = await preview_statistics(flow=upgraded, proposal_id=proposal.id, minimum=5)
    assert (summary["sharers"], summary["shown"]) == (4, False)


def test_the_minimum_cannot_be_set_below_the_floor() -> None:
    with pytest.raises(ConfigError):
        Settings.from_env({"COOP_GOVERNANCE_MIN_SHARERS": "2"})
    assert Settings.from_env({}).governance_min_sharers == 10
