"""A member's personal token with `member:manage`: connections, scorers, grants, log, export,
deletion. Mutations answer with a success type or the area's typed error."""

from __future__ import annotations

import httpx

from coop.jobs.scoring import ScoringFlow
from coop.vault import Vault
from tests.api.conftest import give_score
from tests.api.factories import codes, gql, grant_token, make_app, make_member, personal_token

MANAGE = ["member:manage", "profile", "score:reach"]


async def test_member_lists_and_revokes_grants(client: httpx.AsyncClient, vault: Vault) -> None:
    member = await make_member(vault)
    app_token = await grant_token(member, await make_app(vault, "Revoked App"), ["score:reach"])
    own = await personal_token(member, MANAGE)
    body = (await gql(client, own, "{ viewer { grants { id appName status scopes } } }")).json()
    grant = body["data"]["viewer"]["grants"][0]
    assert grant["appName"] == "Revoked App" and grant["status"] == "ACTIVE"
    mutation = """mutation($id: ID!) { revokeGrant(id: $id) { __typename
      ... on ChangeGrantSuccess { grant { status } } ... on GrantError { code } } }"""
    body = (await gql(client, own, mutation, {"id": grant["id"]})).json()
    assert body["data"]["revokeGrant"] == {
        "__typename": "ChangeGrantSuccess",
        "grant": {"status": "REVOKED"},
    }
    assert (await gql(client, app_token.access_token, "{ viewer { id } }")).status_code == 401
    body = (await gql(client, own, mutation, {"id": "bm9wZQ"})).json()
    assert body["data"]["revokeGrant"] == {"__typename": "GrantError", "code": "NOT_FOUND"}


async def test_member_pauses_and_resumes_one_grant(client: httpx.AsyncClient, vault: Vault) -> None:
    member = await make_member(vault)
    paused_app = await grant_token(member, await make_app(vault, "Paused App"), ["score:reach"])
    other_app = await grant_token(member, await make_app(vault, "Other App"), ["score:reach"])
    own = await personal_token(member, MANAGE)
    grants = (await gql(client, own, "{ viewer { grants { id appName } } }")).json()
    grant_id = next(
        g["id"] for g in grants["data"]["viewer"]["grants"] if g["appName"] == "Paused App"
    )
    change = """mutation($id: ID!) { %s(id: $id) { __typename
      ... on ChangeGrantSuccess { grant { status pausedByYou } } ... on GrantError { code } } }"""
    body = (await gql(client, own, change % "pauseGrant", {"id": grant_id})).json()
    assert body["data"]["pauseGrant"] == {
        "__typename": "ChangeGrantSuccess",
        "grant": {"status": "PAUSED", "pausedByYou": True},
    }
    assert (await gql(client, paused_app.access_token, "{ viewer { id } }")).status_code == 401
    assert (await gql(client, other_app.access_token, "{ viewer { id } }")).status_code == 200
    body = (await gql(client, own, change % "resumeGrant", {"id": grant_id})).json()
    assert body["data"]["resumeGrant"]["grant"] == {"status": "ACTIVE", "pausedByYou": False}
    assert (await gql(client, paused_app.access_token, "{ viewer { id } }")).status_code == 200
    revoke = (await gql(client, own, change % "revokeGrant", {"id": grant_id})).json()
    assert revoke["data"]["revokeGrant"]["grant"]["status"] == "REVOKED"
    body = (await gql(client, own, change % "pauseGrant", {"id": grant_id})).json()
    assert body["data"]["pauseGrant"] == {"__typename": "GrantError", "code": "INVALID_STATE"}


async def test_pausing_all_sharing(client: httpx.AsyncClient, vault: Vault) -> None:
    member = await make_member(vault)
    app_token = await grant_token(member, await make_app(vault), ["score:reach"])
    own = await personal_token(member, MANAGE)
    pause = "mutation { setSharingPaused(paused: true) { ... on SetSharingSuccess { paused } } }"
    assert (await gql(client, own, pause)).json()["data"]["setSharingPaused"] == {"paused": True}
    assert (await gql(client, app_token.access_token, "{ viewer { id } }")).status_code == 401
    body = (await gql(client, own, "{ viewer { sharingPaused } }")).json()
    assert body["data"]["viewer"]["sharingPaused"] is True


async def test_member_enables_and_disables_scorers(
    client: httpx.AsyncClient, vault: Vault, flow: ScoringFlow
) -> None:
    member = await make_member(vault)
    own = await personal_token(member, MANAGE)
    query = "{ viewer { scorerSettings { enabled scorer { name reads range { min max } } } } }"
    body = (await gql(client, own, query)).json()
    settings = {s["scorer"]["name"]: s for s in body["data"]["viewer"]["scorerSettings"]}
    assert settings["reach"]["enabled"] is False
    enable = """mutation($n: String!) { enableScorer(name: $n) { __typename
      ... on SetScorerSuccess { scorer { enabled } } ... on ScorerError { code } } }"""
    body = (await gql(client, own, enable, {"n": "reach"})).json()
    assert body["data"]["enableScorer"]["scorer"] == {"enabled": True}
    body = (await gql(client, own, enable, {"n": "no-such-scorer"})).json()
    assert body["data"]["enableScorer"] == {"__typename": "ScorerError", "code": "NOT_FOUND"}
    disable = enable.replace("enableScorer", "disableScorer")
    body = (await gql(client, own, disable, {"n": "reach"})).json()
    assert body["data"]["disableScorer"]["scorer"] == {"enabled": False}


async def test_member_reads_own_scores_with_explanations(
    client: httpx.AsyncClient, vault: Vault, flow: ScoringFlow
) -> None:
    member = await make_member(vault)
    await give_score(flow, member)
    own = await personal_token(member, MANAGE)
    query = "{ viewer { scores { value explanation { reasons contributions { record } } } } }"
    body = (await gql(client, own, query)).json()
    assert body["data"]["viewer"]["scores"][0]["explanation"]["reasons"]


async def test_export_and_deletion_need_the_confirmation(
    client: httpx.AsyncClient, vault: Vault
) -> None:
    member = await make_member(vault)
    own = await personal_token(member, MANAGE)
    body = (
        await gql(
            client,
            own,
            "mutation { requestExport { ... on RequestExportSuccess { downloadPath } } }",
        )
    ).json()
    assert body["data"]["requestExport"]["downloadPath"].startswith("/account/export/download?")
    wrong = 'mutation { deleteAccount(confirm: "yes") { ... on AccountError { code } } }'
    body = (await gql(client, own, wrong)).json()
    assert body["data"]["deleteAccount"] == {"code": "CONFIRMATION_MISMATCH"}
    assert (await gql(client, own, "{ viewer { id } }")).status_code == 200


async def test_connections_list_with_health(client: httpx.AsyncClient, vault: Vault) -> None:
    member = await make_member(vault)
    own = await personal_token(member, MANAGE)
    body = (await gql(client, own, "{ viewer { connections { id state records } } }")).json()
    assert body["data"]["viewer"]["connections"] == []
    sync = """mutation { syncConnection(id: "Q29ubmVjdGlvbjox") { __typename
      ... on ConnectionError { code } } }"""
    body = (await gql(client, own, sync)).json()
    assert body["data"]["syncConnection"] == {"__typename": "ConnectionError", "code": "NOT_FOUND"}


async def test_app_tokens_cannot_manage(client: httpx.AsyncClient, vault: Vault) -> None:
    member = await make_member(vault)
    token = await grant_token(member, await make_app(vault), ["score:reach", "profile"])
    body = (
        await gql(
            client,
            token.access_token,
            "mutation { setSharingPaused(paused: false) { __typename } }",
        )
    ).json()
    assert body["data"] == {"setSharingPaused": None}
    assert codes(body) == ["FORBIDDEN"]
    assert body["errors"][0]["extensions"]["required_scope"] == "member:manage"


async def test_each_grant_lists_its_scores_and_how_precisely_the_app_learns_them(
    client: httpx.AsyncClient, vault: Vault
) -> None:
    member = await make_member(vault)
    await grant_token(
        member,
        await make_app(vault, "Leveled App"),
        ["profile", "score:reach", "score:reach:history", "score:cadence:atleast:2.5"],
    )
    await grant_token(member, await make_app(vault, "Band App"), ["score:reach:band"])
    own = await personal_token(member, MANAGE)
    query = "{ viewer { grants { appName levels { scorer level threshold history } } } }"
    grants = (await gql(client, own, query)).json()["data"]["viewer"]["grants"]
    by_app = {g["appName"]: g["levels"] for g in grants}
    assert by_app["Leveled App"] == [
        {"scorer": "cadence", "level": "AT_LEAST", "threshold": 2.5, "history": False},
        {"scorer": "reach", "level": "EXACT", "threshold": None, "history": True},
    ]
    assert by_app["Band App"] == [
        {"scorer": "reach", "level": "BAND", "threshold": None, "history": False}
    ]
