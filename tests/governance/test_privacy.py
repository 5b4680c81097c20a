"""Who voted how is stored nowhere in clear: the roll holds keyed hashes, ballots hold no
member link and no time, and a member's link to their ballot opens only with their key."""

from __future__ import annotations

import uuid

import pytest
from tortoise import connections

from coop.errors import IntegrityError
from coop.governance import service as governance
from coop.governance.models import Ballot, RollEntry
from coop.vault import Vault
from tests.api.factories import make_member
from tests.governance.conftest import REACH_1, RULES


async def _dump(table: str) -> str:
    _, rows = await connections.get("default").execute_query(f'SELECT * FROM "{table}"')  # noqa: S608
    return repr([dict(r) for r in rows])


async def test_no_table_of_the_vote_names_a_member_or_says_when_they_voted(
    db: str, vault: Vault
) -> None:
    alice, bob = await make_member(vault), await make_member(vault)
    opened = await governance.open_proposal(vault=vault, meta=REACH_1, rules=RULES)
    await governance.cast_vote(vault=vault, member_id=alice.id, proposal_id=opened.id, choice="yes")
    await governance.cast_vote(vault=vault, member_id=bob.id, proposal_id=opened.id, choice="no")
    dumped = "".join(
        [await _dump(t) for t in ("governance_roll", "governance_ballot", "governance_proposal")]
    )
    for member in (alice, bob):
        assert str(member.id) not in dumped and member.id.hex not in dumped
    assert set(Ballot._meta.fields_map) == {"id", "proposal", "proposal_id", "choice"}
    assert {"id", "proposal", "proposal_id", "voter_key", "ballot_sealed"} == set(
        RollEntry._meta.fields_map
    )


async def test_a_members_link_to_their_ballot_opens_only_with_their_own_key(
    db: str, vault: Vault
) -> None:
    alice, bob = await make_member(vault), await make_member(vault)
    opened = await governance.open_proposal(vault=vault, meta=REACH_1, rules=RULES)
    await governance.cast_vote(vault=vault, member_id=alice.id, proposal_id=opened.id, choice="no")
    entry = await RollEntry.get(
        proposal_id=opened.id, voter_key=governance.voter_key(vault, opened.id, alice.id)
    )
    assert entry.ballot_sealed is not None
    with pytest.raises(IntegrityError):
        governance._open_link(await vault.cipher_for(bob.id), entry)
    assert governance._open_link(await vault.cipher_for(alice.id), entry) is not None
    # Bob's own view shows that he has not voted, never Alice's choice.
    mine = await governance.my_votes(vault=vault, member_id=bob.id, proposal_ids=[opened.id])
    assert mine[opened.id] == governance.MyVote(True, None)


def test_roll_keys_differ_between_proposals_so_rolls_cannot_be_joined(vault: Vault) -> None:
    member, first, second = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    key = governance.voter_key(vault, first, member)
    assert key == governance.voter_key(vault, first, member)  # found again at the next vote
    assert key != governance.voter_key(vault, second, member)
    assert member.hex not in key and str(member) not in key
