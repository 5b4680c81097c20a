"""Global ids: someone else's object looks exactly like no object (GQ-01); ids are pairwise
per app (GQ-14)."""

from __future__ import annotations

import base64

import httpx

from coop.jobs.scoring import ScoringFlow
from coop.vault import Vault
from tests.api.conftest import give_score
from tests.api.factories import gql, grant_token, make_app, make_member, personal_token

NODE = "query($id: ID!) { node(id: $id) { id ... on Score { value } } }"


def _strip(body: dict[str, object]) -> dict[str, object]:
    for error in body.get("errors") or []:  # type: ignore[attr-defined]
        error.pop("locations", None)
    return body


async def test_another_members_ids_answer_like_nonexistent_ones(
    client: httpx.AsyncClient, vault: Vault, flow: ScoringFlow
) -> None:
    app = await make_app(vault)
    alice, bob = await make_member(vault), await make_member(vault)
    await give_score(flow, alice)
    await give_score(flow, bob)
    alice_token = await grant_token(alice, app, ["score:reach"])
    bob_token = await grant_token(bob, app, ["score:reach"])
    query = '{ viewer { id score(scorer: "reach") { id } } }'
    bob_view = (await gql(client, bob_token.access_token, query)).json()["data"]["viewer"]
    own = (await gql(client, alice_token.access_token, query)).json()["data"]["viewer"]
    found = (await gql(client, alice_token.access_token, NODE, {"id": own["score"]["id"]})).json()
    assert found["data"]["node"]["value"] > 0
    nonexistent = base64.urlsafe_b64encode(b"Score:nobody/reach").decode().rstrip("=")
    answers = [
        _strip((await gql(client, alice_token.access_token, NODE, {"id": i})).json())
        for i in (bob_view["score"]["id"], bob_view["id"], nonexistent, "garbage", "R3JhbnQ6eA")
    ]
    assert all(a == answers[0] for a in answers)
    assert answers[0]["data"] == {"node": None}
    assert answers[0]["errors"][0]["extensions"] == {"code": "NOT_FOUND"}  # type: ignore[index]


async def test_two_apps_see_different_unrelated_ids_for_one_member(
    client: httpx.AsyncClient, vault: Vault, flow: ScoringFlow
) -> None:
    member = await make_member(vault)
    await give_score(flow, member)
    a = await grant_token(member, await make_app(vault, "A"), ["score:reach"])
    b = await grant_token(member, await make_app(vault, "B"), ["score:reach"])
    query = "{ viewer { id } }"
    id_a = (await gql(client, a.access_token, query)).json()["data"]["viewer"]["id"]
    id_b = (await gql(client, b.access_token, query)).json()["data"]["viewer"]["id"]
    assert id_a != id_b
    for seen in (id_a, id_b):
        decoded = base64.urlsafe_b64decode(seen + "=" * (-len(seen) % 4)).decode()
        assert str(member.id) not in decoded and member.id.hex not in decoded
    body = (await gql(client, a.access_token, NODE, {"id": id_b})).json()
    assert body["data"] == {"node": None}
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_app_tokens_cannot_reach_member_objects(
    client: httpx.AsyncClient, vault: Vault
) -> None:
    member = await make_member(vault)
    app = await make_app(vault)
    token = await grant_token(member, app, ["score:reach", "profile"])
    own = await personal_token(member, ["member:manage"])
    grants = (await gql(client, own, "{ viewer { grants { id } } }")).json()
    grant_id = grants["data"]["viewer"]["grants"][0]["id"]
    body = (await gql(client, own, NODE, {"id": grant_id})).json()
    assert body["data"]["node"]["id"] == grant_id
    body = (await gql(client, token.access_token, NODE, {"id": grant_id})).json()
    assert body["data"] == {"node": None}
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    body = (await gql(client, token.access_token, "{ viewer { grants { id } } }")).json()
    assert body["data"]["viewer"]["grants"] is None
    assert body["errors"][0]["extensions"] == {
        "code": "FORBIDDEN",
        "required_scope": "member:manage",
    }
