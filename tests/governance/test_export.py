"""A member's export holds their own votes (and nobody else's), valid against the schema."""

from __future__ import annotations

import json

import jsonschema

from coop.governance import service as governance
from coop.jobs import governance as governance_flow
from coop.portability import export
from coop.vault import Vault
from tests.api.factories import make_member
from tests.governance.conftest import REACH_1, REACH_2, RULES
from tests.portability.test_export import collect, files_of


async def test_the_export_holds_the_members_own_votes_only(db: str, vault: Vault) -> None:
    alice, bob = await make_member(vault), await make_member(vault)
    await governance.record_baseline(metas=[])
    first = await governance.open_proposal(vault=vault, meta=REACH_1, rules=RULES)
    await governance.cast_vote(vault=vault, member_id=alice.id, proposal_id=first.id, choice="no")
    await governance.cast_vote(vault=vault, member_id=alice.id, proposal_id=first.id, choice="yes")
    await governance.cast_vote(vault=vault, member_id=bob.id, proposal_id=first.id, choice="yes")
    await governance_flow.close_proposal(proposal_id=first.id, now=first.closes_at)
    second = await governance.open_proposal(vault=vault, meta=REACH_2, rules=RULES)
    await governance.cast_vote(vault=vault, member_id=bob.id, proposal_id=second.id, choice="no")

    files = files_of(await collect(vault, alice.id))
    assert files["votes.json"] == [
        {
            "proposal_id": str(first.id),
            "kind": "install",
            "scorer": "reach",
            "version": "1.0",
            "state": "closed",
            "outcome": "approved",
            "closes_at": first.closes_at.isoformat(),
            "choice": "yes",
        }
    ]
    schema = json.loads(export.schema_bytes())
    jsonschema.validate(files["votes.json"], {"$ref": "#/$defs/votes", "$defs": schema["$defs"]})
    assert files["manifest.json"]["counts"]["votes.json"] == 1
    bobs = files_of(await collect(vault, bob.id))["votes.json"]
    assert [(v["version"], v["choice"]) for v in bobs] == [("2.0", "no"), ("1.0", "yes")]
