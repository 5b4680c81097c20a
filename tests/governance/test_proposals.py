"""The whole life of a proposal on both engines, with real members: open (roll fixed), vote,
change a vote, close (tally stored, rules recorded, outcome applied), and bad input."""

from __future__ import annotations

from datetime import timedelta

import pytest

from coop.errors import (
    InvalidChoiceError,
    NotEligibleError,
    ProposalExistsError,
    ProposalNotFoundError,
    VotingClosedError,
    VotingOpenError,
)
from coop.governance import service as governance
from coop.governance.models import Approval, Ballot, RollEntry
from coop.governance.rules import Rules, Tally, outcome
from coop.jobs import governance as flow
from coop.members.models import Member
from coop.types import utcnow
from coop.vault import Vault
from tests.api.factories import make_member
from tests.governance.conftest import REACH_1, REACH_2, RULES


async def _members(vault: Vault, n: int) -> list[Member]:
    return [await make_member(vault) for _ in range(n)]


async def test_a_proposal_lives_from_opening_to_an_applied_outcome(db: str, vault: Vault) -> None:
    alice, bob, carol = await _members(vault, 3)
    opened = await governance.open_proposal(vault=vault, meta=REACH_1, rules=RULES)
    assert (opened.kind, opened.state, opened.tally) == ("install", "open", Tally(0, 0, 0, 3))
    assert opened.closes_at - opened.opened_at == timedelta(hours=24)
    late = await make_member(vault)  # joined after the opening: not on the roll

    await governance.cast_vote(vault=vault, member_id=alice.id, proposal_id=opened.id, choice="no")
    await governance.cast_vote(vault=vault, member_id=alice.id, proposal_id=opened.id, choice="yes")
    await governance.cast_vote(vault=vault, member_id=bob.id, proposal_id=opened.id, choice="yes")
    mine = await governance.my_votes(vault=vault, member_id=alice.id, proposal_ids=[opened.id])
    assert mine[opened.id] == governance.MyVote(True, "yes")
    theirs = await governance.my_votes(vault=vault, member_id=carol.id, proposal_ids=[opened.id])
    assert theirs[opened.id] == governance.MyVote(True, None)
    assert (await governance.get_proposal(proposal_id=opened.id)).tally == Tally(2, 0, 0, 3)
    assert await Ballot.filter(proposal_id=opened.id).count() == 2  # a change never adds

    with pytest.raises(NotEligibleError):
        await governance.cast_vote(
            vault=vault, member_id=late.id, proposal_id=opened.id, choice="no"
        )
    with pytest.raises(VotingOpenError):
        await flow.close_proposal(proposal_id=opened.id)
    assert await Approval.filter(scorer="reach").count() == 0

    closed = await flow.close_proposal(proposal_id=opened.id, now=opened.closes_at)
    assert (closed.state, closed.outcome) == ("closed", "approved")
    assert closed.tally == Tally(2, 0, 0, 3)
    assert closed.rules == RULES
    approval = await Approval.get(scorer="reach", version="1.0")
    assert (approval.source, approval.proposal_id) == ("vote", opened.id)
    assert (await governance.standing(scorer="reach", version="1.0")).approved

    with pytest.raises(VotingClosedError):
        await governance.cast_vote(
            vault=vault, member_id=carol.id, proposal_id=opened.id, choice="no", now=utcnow()
        )
    with pytest.raises(VotingClosedError):
        await flow.close_proposal(proposal_id=opened.id, now=opened.closes_at)
    assert (await governance.get_proposal(proposal_id=opened.id)).tally == Tally(2, 0, 0, 3)


async def test_a_vote_after_the_period_ends_is_refused_even_before_the_close(
    db: str, vault: Vault
) -> None:
    [alice] = await _members(vault, 1)
    opened = await governance.open_proposal(vault=vault, meta=REACH_1, rules=RULES)
    with pytest.raises(VotingClosedError):
        await governance.cast_vote(
            vault=vault,
            member_id=alice.id,
            proposal_id=opened.id,
            choice="yes",
            now=opened.closes_at,
        )
    assert await Ballot.all().count() == 0


async def test_bad_votes_are_refused_with_their_codes_and_change_nothing(
    db: str, vault: Vault
) -> None:
    [alice] = await _members(vault, 1)
    opened = await governance.open_proposal(vault=vault, meta=REACH_1, rules=RULES)
    await governance.cast_vote(vault=vault, member_id=alice.id, proposal_id=opened.id, choice="no")
    with pytest.raises(InvalidChoiceError) as bad:
        await governance.cast_vote(
            vault=vault, member_id=alice.id, proposal_id=opened.id, choice="maybe"
        )
    assert bad.value.code == "invalid_choice"
    with pytest.raises(ProposalNotFoundError) as unknown:
        await governance.cast_vote(
            vault=vault, member_id=alice.id, proposal_id=REACH_ID, choice="yes"
        )
    assert unknown.value.code == "proposal_not_found"
    mine = await governance.my_votes(vault=vault, member_id=alice.id, proposal_ids=[opened.id])
    assert mine[opened.id].choice == "no"
    with pytest.raises(ProposalExistsError):  # one open vote per scorer version
        await governance.open_proposal(vault=vault, meta=REACH_1, rules=RULES)
    with pytest.raises(ProposalExistsError):  # nothing offered yet: nothing to retire
        await governance.open_proposal(vault=vault, meta=REACH_1, rules=RULES, retire=True)


REACH_ID = __import__("uuid").UUID(int=7)


@pytest.mark.parametrize(
    ("tally", "expected"),
    [
        (Tally(2, 1, 0, 6), "approved"),  # half the roll voted, 2 of 3 said yes
        (Tally(1, 1, 1, 6), "rejected"),  # a tie is not more than half
        (Tally(1, 0, 1, 6), "no_quorum"),  # a third of the roll voted
        (Tally(0, 0, 3, 6), "rejected"),  # quorum by abstentions, nobody said yes
        (Tally(0, 0, 0, 0), "no_quorum"),
    ],
)
def test_quorum_counts_every_ballot_and_majority_only_yes_and_no(
    tally: Tally, expected: str
) -> None:
    assert outcome(tally, Rules(quorum=50, majority=50, voting_hours=1)) == expected


async def test_an_upgrade_shows_what_changes_and_a_rejection_keeps_the_approved_version(
    db: str, vault: Vault
) -> None:
    [alice] = await _members(vault, 1)
    await governance.record_baseline(metas=[REACH_1])
    assert (await Approval.get(scorer="reach", version="1.0")).source == "baseline"
    assert not await governance.record_baseline(metas=[REACH_2])  # recorded once
    upgrade = await governance.open_proposal(vault=vault, meta=REACH_2, rules=RULES)
    assert (upgrade.kind, upgrade.previous_version) == ("upgrade", "1.0")
    assert upgrade.changes == {
        "from_version": "1.0",
        "reads_more": ["activity"],
        "reads_less": [],
        "text": "added",
    }
    await governance.cast_vote(vault=vault, member_id=alice.id, proposal_id=upgrade.id, choice="no")
    closed = await flow.close_proposal(proposal_id=upgrade.id, now=upgrade.closes_at)
    assert closed.outcome == "rejected"
    assert (await governance.standing(scorer="reach", version="2.0")).reason == "rejected"
    assert (await governance.standing(scorer="reach", version="1.0")).approved
    assert await governance.offered([REACH_1, REACH_2]) == [REACH_1]


async def test_an_approved_retirement_stops_offering_every_version(db: str, vault: Vault) -> None:
    [alice] = await _members(vault, 1)
    await governance.record_baseline(metas=[REACH_1])
    retire = await governance.open_proposal(vault=vault, meta=REACH_1, rules=RULES, retire=True)
    assert (retire.kind, retire.version) == ("retire", "1.0")
    await governance.cast_vote(vault=vault, member_id=alice.id, proposal_id=retire.id, choice="yes")
    assert (await flow.close_proposal(proposal_id=retire.id, now=retire.closes_at)).outcome == (
        "approved"
    )
    assert await governance.offered([REACH_1]) == []
    assert (await governance.standing(scorer="reach", version="1.0")).reason == "retired"


async def test_due_proposals_are_closed_by_the_housekeeping_step(db: str, vault: Vault) -> None:
    await _members(vault, 2)
    opened = await governance.open_proposal(vault=vault, meta=REACH_1, rules=RULES)
    assert await flow.close_due() == []
    [closed] = await flow.close_due(now=opened.closes_at + timedelta(seconds=1))
    assert (closed.id, closed.outcome) == (opened.id, "no_quorum")
    assert await RollEntry.filter(proposal_id=opened.id).count() == 2
