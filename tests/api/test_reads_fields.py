"""`Scorer.readsFields`: each kind a scorer reads with the fields it declared (null: all of
them) and the words members see (issue 16 point 4)."""

from __future__ import annotations

import httpx

from coop.jobs.scoring import ScoringFlow
from coop.vault import Vault
from tests.api.factories import gql, grant_token, make_app, make_member


async def test_the_catalogue_lists_declared_fields_and_null_for_whole_kinds(
    client: httpx.AsyncClient, vault: Vault, flow: ScoringFlow
) -> None:
    member = await make_member(vault)
    token = (await grant_token(member, await make_app(vault), ["profile"])).access_token
    query = "{ scorers { name reads readsFields { kind fields words } } }"
    body = (await gql(client, token, query)).json()
    assert "errors" not in body, body
    scorers = {s["name"]: s for s in body["data"]["scorers"]}
    assert scorers["cadence"]["readsFields"] == [
        {
            "kind": "post",
            "fields": ["occurred_at", "network"],
            "words": "posts you published: dates and networks only",
        },
        {
            "kind": "activity",
            "fields": ["occurred_at", "network"],
            "words": "your public activity: dates and networks only",
        },
    ]
    assert [k["kind"] for k in scorers["reach"]["readsFields"]] == scorers["reach"]["reads"]
    assert scorers["reach"]["readsFields"][0] == {
        "kind": "post",
        "fields": None,
        "words": "posts you published, with their reaction counts",
    }
