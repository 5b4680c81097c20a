"""`proposals` and `castVote` for a member's personal token (`member:manage`), on both engines
with real members: the member sees the tally and their own vote, a second vote replaces the
first, and bad votes are typed errors that change nothing."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import pytest

from coop.api import ids
from coop.config import Settings
from coop.governance import service as governance
from coop.governance.models import Ballot
from coop.jobs import governance as governance_flow
from coop.types import clock
from coop.vault import Vault
from tests.api.factories import codes, gql, grant_token, make_app, make_member, personal_token
from tests.governance.conftest import REACH_1, RULES

PROPOSALS = """
query { proposals { id kind scorer version state outcome canVote myVote
  rules { quorumPercent majorityPercent votingHours }
  tally { yes no abstain eligible } } }
"""
VOTE = """
mutation($id: ID!, $choice: VoteChoice!) {
  castVote(proposalId: $id, choice: $choice) {
    __typename
    ... on CastVoteSuccess { proposal { myVote tally { yes no abstain eligible } } }
    ... on VoteError { code message }
  }
}
"""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace(settings, governance=True)


async def vote(client: httpx.AsyncClient, token: str, proposal_id: str, choice: str) -> Any:
    response = await gql(client, token, VOTE, {"id": proposal_id, "choice": choice})
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_member_lists_proposals_votes_and_changes_their_vote(
    client: httpx.AsyncClient, vault: Vault
) -> None:
    alice, bob = await make_member(vault), await make_member(vault)
    opened = await governance.open_proposal(vault=vault, meta=REACH_1, rules=RULES)
    alice_token = await personal_token(alice, ["member:manage"])
    listed = (await gql(client, alice_token, PROPOSALS)).json()["data"]["proposals"]
    assert listed == [
        {
            "id": ids.encode("Proposal", str(opened.id)),
            "kind": "INSTALL",
            "scorer": "reach",
            "version": "1.0",
            "state": "OPEN",
            "outcome": None,
            "canVote": True,
            "myVote": None,
            "rules": {"quorumPercent": 50, "majorityPercent": 50, "votingHours": 24},
            "tally": {"yes": 0, "no": 0, "abstain": 0, "eligible": 2},
        }
    ]
    proposal_id = listed[0]["id"]
    first = await vote(client, alice_token, proposal_id, "YES")
    assert first["data"]["castVote"] == {
        "__typename": "CastVoteSuccess",
        "proposal": {"myVote": "YES", "tally": {"yes": 1, "no": 0, "abstain": 0, "eligible": 2}},
    }
    again = await vote(client, alice_token, proposal_id, "NO")
    assert again["data"]["castVote"]["proposal"]["tally"] == {
        "yes": 0,
        "no": 1,
        "abstain": 0,
        "eligible": 2,
    }
    bob_token = await personal_token(bob, ["member:manage"])
    seen_by_bob = (await gql(client, bob_token, PROPOSALS)).json()["data"]["proposals"][0]
    assert (seen_by_bob["myVote"], seen_by_bob["tally"]["no"]) == (None, 1)  # not Alice's vote


async def test_bad_votes_are_typed_errors_and_record_nothing(
    client: httpx.AsyncClient, vault: Vault
) -> None:
    alice = await make_member(vault)
    opened = await governance.open_proposal(vault=vault, meta=REACH_1, rules=RULES)
    late = await make_member(vault)
    proposal_id = ids.encode("Proposal", str(opened.id))
    late_token = await personal_token(late, ["member:manage"])
    refused = await vote(client, late_token, proposal_id, "YES")
    assert refused["data"]["castVote"]["code"] == "NOT_ELIGIBLE"
    unknown = await vote(client, late_token, ids.encode("Proposal", "nope"), "YES")
    assert unknown["data"]["castVote"]["code"] == "NOT_FOUND"
    alice_token = await personal_token(alice, ["member:manage"])
    bad_choice = await vote(client, alice_token, proposal_id, "MAYBE")
    assert codes(bad_choice) == ["GRAPHQL_VALIDATION_FAILED"]
    clock.advance(RULES.period.total_seconds() + 1)
    await governance_flow.close_proposal(proposal_id=opened.id)
    closed = await vote(client, alice_token, proposal_id, "YES")
    assert closed["data"]["castVote"]["code"] == "VOTING_CLOSED"
    assert not await Ballot.exists()


async def test_an_app_token_cannot_read_proposals_or_vote(
    client: httpx.AsyncClient, vault: Vault
) -> None:
    alice = await make_member(vault)
    opened = await governance.open_proposal(vault=vault, meta=REACH_1, rules=RULES)
    app_token = await grant_token(alice, await make_app(vault), ["profile"])
    read = (await gql(client, app_token.access_token, PROPOSALS)).json()
    assert codes(read) == ["FORBIDDEN"]
    voted = await vote(
        client, app_token.access_token, ids.encode("Proposal", str(opened.id)), "YES"
    )
    assert codes(voted) == ["FORBIDDEN"]
    assert not await Ballot.exists()
