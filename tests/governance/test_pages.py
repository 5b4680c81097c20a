"""The Cooperative page and the notice on Scores, through the app with a real session: the
member sees the rules, open and closed proposals, the tally and their own vote, and votes."""

from __future__ import annotations

import re
from dataclasses import replace

import httpx
import pytest

from coop.config import Settings
from coop.governance import service as governance
from coop.governance.models import Ballot
from coop.jobs import governance as governance_flow
from coop.members.models import Member
from coop.vault import Vault
from tests.api.factories import make_member
from tests.governance.conftest import REACH_1, REACH_2, RULES
from tests.web.journeys import log_in_new_member, post_form


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace(settings, governance=True)


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


async def test_a_member_votes_on_the_cooperative_page_and_sees_their_vote(
    client: httpx.AsyncClient, vault: Vault
) -> None:
    creds = await log_in_new_member(client)
    me = await Member.get(email_index=vault.blind_index(creds.email.lower(), purpose="email"))
    other = await make_member(vault)
    opened = await governance.open_proposal(vault=vault, meta=REACH_1, rules=RULES)
    await governance.cast_vote(vault=vault, member_id=other.id, proposal_id=opened.id, choice="no")

    page = text_of((await client.get("/cooperative")).text)
    assert "Offer Reach 1.0" in page and "You have not voted." in page
    assert "Yes 0 · No 1 · Abstain 0" in page and "1 of 2 members voted" in page
    assert "at least 25% of the members on the roll vote" in page  # the rules now
    assert "it needs 50% of the roll to vote" in page  # the rules this vote opened under

    path = f"/cooperative/proposals/{opened.id}/vote"
    voted = await post_form(client, path, {"choice": "yes"}, page="/cooperative")
    assert voted.status_code == 303
    page = text_of((await client.get("/cooperative")).text)
    assert "Your vote is recorded: Yes." in page
    assert "Your vote: Yes" in page and "Yes 1 · No 1" in page
    await post_form(client, path, {"choice": "abstain"}, page="/cooperative")
    assert (await governance.get_proposal(proposal_id=opened.id)).tally.turnout == 2
    mine = await governance.my_votes(vault=vault, member_id=me.id, proposal_ids=[opened.id])
    assert mine[opened.id].choice == "abstain"

    scores = text_of((await client.get("/")).text)
    assert "A vote is open" in scores and "Reach 1.0" in scores

    await governance_flow.close_proposal(proposal_id=opened.id, now=opened.closes_at)
    page = text_of((await client.get("/cooperative")).text)
    assert "No vote is open." in page and "rejected" in page and "Your vote: Abstain" in page
    after = await post_form(client, path, {"choice": "yes"}, page="/cooperative")
    assert "voting_closed" in text_of((await client.get(after.headers["location"])).text)
    assert await Ballot.filter(choice="yes").count() == 0
    assert "A vote is open" not in text_of((await client.get("/")).text)


async def test_bad_votes_on_the_page_say_why_and_change_nothing(
    client: httpx.AsyncClient, vault: Vault
) -> None:
    opened = await governance.open_proposal(vault=vault, meta=REACH_2, rules=RULES)
    await log_in_new_member(client)  # joined after the opening
    page = text_of((await client.get("/cooperative")).text)
    assert "You joined after this vote opened" in page
    path = f"/cooperative/proposals/{opened.id}/vote"
    late = await post_form(client, path, {"choice": "yes"}, page="/cooperative")
    assert "not_eligible" in text_of((await client.get(late.headers["location"])).text)
    none = await post_form(client, path, {}, page="/cooperative")
    assert "invalid_choice" in text_of((await client.get(none.headers["location"])).text)
    unknown = await post_form(
        client,
        "/cooperative/proposals/00000000-0000-0000-0000-000000000000/vote",
        {"choice": "no"},
        page="/cooperative",
    )
    assert "proposal_not_found" in text_of((await client.get(unknown.headers["location"])).text)
    assert not await Ballot.exists()


async def test_a_member_chooses_to_share_previews_and_proposals_show_only_totals(
    client: httpx.AsyncClient, vault: Vault
) -> None:
    from coop.governance import statistics
    from coop.governance.models import Proposal

    creds = await log_in_new_member(client)
    me = await Member.get(email_index=vault.blind_index(creds.email.lower(), purpose="email"))
    assert "You do not share your previews." in text_of((await client.get("/cooperative")).text)
    shared = await post_form(
        client, "/cooperative/statistics", {"share": "yes"}, page="/cooperative"
    )
    assert shared.status_code == 303
    page = text_of((await client.get("/cooperative")).text)
    assert "You share your previews." in page and "from the next proposal on" in page
    assert await statistics.is_sharing(member_id=me.id)

    opened = await governance.open_proposal(vault=vault, meta=REACH_2, rules=RULES)
    await statistics.store(
        proposal_id=opened.id, summary={"sharers": 3, "minimum": 10, "shown": False}
    )
    page = text_of((await client.get("/cooperative")).text)
    assert "fewer than 10 members share their previews" in page
    summary = {
        "sharers": 12,
        "minimum": 10,
        "shown": True,
        "mean": 41.5,
        "compared": 11,
        "up": 7,
        "down": 3,
        "same": 1,
        "mean_change": 2.25,
    }
    await Proposal.filter(id=opened.id).update(statistics=summary)
    page = text_of((await client.get("/cooperative")).text)
    assert "(12 members who share their previews): would-be score on average 41.5" in page
    assert "7 up, 3 down, 1 about the same; on average +2.2" in page

    await post_form(client, "/cooperative/statistics", {"share": "no"}, page="/cooperative")
    assert not await statistics.is_sharing(member_id=me.id)
