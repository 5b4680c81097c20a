"""Erasure removes a member's votes without changing closed tallies; many votes racing the
close are each either counted or refused, never lost and never counted after it."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from coop.config import Settings
from coop.errors import VotingClosedError
from coop.governance import service as governance
from coop.governance.models import Ballot, RollEntry
from coop.governance.rules import Tally
from coop.jobs import governance as flow
from coop.portability.erase import erase_member
from coop.vault import Vault
from tests.api.factories import make_member
from tests.governance.conftest import REACH_1, REACH_2, RULES


async def test_erase_removes_the_members_votes_and_closed_tallies_stay(
    db: str, vault: Vault, settings: Settings
) -> None:
    alice, bob = await make_member(vault), await make_member(vault)
    await governance.record_baseline(metas=[])
    closed = await governance.open_proposal(vault=vault, meta=REACH_1, rules=RULES)
    for member in (alice, bob):
        await governance.cast_vote(
            vault=vault, member_id=member.id, proposal_id=closed.id, choice="yes"
        )
    await flow.close_proposal(proposal_id=closed.id, now=closed.closes_at)
    still_open = await governance.open_proposal(vault=vault, meta=REACH_2, rules=RULES)
    await governance.cast_vote(
        vault=vault, member_id=alice.id, proposal_id=still_open.id, choice="no"
    )

    erased = await erase_member(vault=vault, settings=settings, member_id=alice.id)

    assert erased.receipt.deleted.get("votes on cooperative proposals") == 2
    assert (await governance.get_proposal(proposal_id=closed.id)).tally == Tally(2, 0, 0, 2)
    assert (await governance.get_proposal(proposal_id=still_open.id)).tally == Tally(0, 0, 0, 1)
    assert await Ballot.filter(proposal_id=closed.id).count() == 1  # Bob's
    keys = [governance.voter_key(vault, p, alice.id) for p in (closed.id, still_open.id)]
    assert not await RollEntry.filter(voter_key__in=keys).exists()
    mine = await governance.my_votes(vault=vault, member_id=bob.id, proposal_ids=[closed.id])
    assert mine[closed.id].choice == "yes"


async def test_many_votes_racing_the_close_are_counted_or_refused_never_lost(
    db: str, vault: Vault
) -> None:
    voters = [await make_member(vault) for _ in range(24)]
    opened = await governance.open_proposal(vault=vault, meta=REACH_1, rules=RULES)
    in_time = opened.closes_at - timedelta(seconds=1)  # sent just before the deadline

    async def vote(i: int) -> str:
        try:
            await governance.cast_vote(
                vault=vault,
                member_id=voters[i].id,
                proposal_id=opened.id,
                choice=("yes", "no", "abstain")[i % 3],
                now=in_time,
            )
        except VotingClosedError:
            return "refused"
        return "counted"

    async def close() -> governance.ProposalView:
        await asyncio.sleep(0)
        return await flow.close_proposal(proposal_id=opened.id, now=opened.closes_at)

    *results, closed = await asyncio.gather(*(vote(i) for i in range(len(voters))), close())
    counted = results.count("counted")
    assert counted + results.count("refused") == len(voters)
    assert closed.tally.turnout == counted  # every counted vote is in the stored totals
    assert await Ballot.filter(proposal_id=opened.id).count() == counted  # none landed later
    stored = await governance.get_proposal(proposal_id=opened.id)
    assert stored.tally == closed.tally
