"""Reading scores: only under a live grant, plausible refusal, and every read logged."""

from __future__ import annotations

import httpx
import pytest

from coop.jobs.scoring import ScoringFlow
from coop.scoring import service as scoring
from coop.types import clock
from coop.vault import Vault
from tests.api.conftest import give_score
from tests.api.factories import codes, gql, grant_token, make_app, make_member, personal_token

SCORE = """{ viewer { score(scorer: "reach") { id value range { min max } scorer { name version }
  computedAt explanation { contributions { amount reason record } reasons } } } }"""


async def test_app_with_a_reach_grant_reads_value_and_explanation(
    client: httpx.AsyncClient, vault: Vault, flow: ScoringFlow
) -> None:
    member = await make_member(vault)
    await give_score(flow, member)
    token = await grant_token(member, await make_app(vault), ["score:reach"])
    body = (await gql(client, token.access_token, SCORE)).json()
    assert "errors" not in body, body
    score = body["data"]["viewer"]["score"]
    assert 0 < score["value"] <= 100
    assert score["range"] == {"min": 0.0, "max": 100.0}
    assert score["scorer"]["name"] == "reach"
    assert score["explanation"]["reasons"]
    assert score["explanation"]["contributions"][0]["record"]


async def test_not_granted_not_enabled_and_no_score_look_the_same(
    client: httpx.AsyncClient, vault: Vault, flow: ScoringFlow
) -> None:
    app = await make_app(vault)
    not_granted = await make_member(vault)
    await give_score(flow, not_granted, "cadence")
    await give_score(flow, not_granted, "reach")
    not_enabled = await make_member(vault)
    no_score = await make_member(vault)
    from coop.scoring import service as scoring

    await scoring.enable_scorer(member_id=no_score.id, meta=flow.runner.meta("reach"))
    answers = []
    for member, scopes in (
        (not_granted, ["score:cadence"]),
        (not_enabled, ["score:reach"]),
        (no_score, ["score:reach"]),
    ):
        token = await grant_token(member, app, scopes)
        response = await gql(client, token.access_token, SCORE)
        body = response.json()
        for error in body["errors"]:
            error.pop("locations", None)
        answers.append((response.status_code, body))
    assert answers[0] == answers[1] == answers[2]
    assert answers[0][1]["data"] == {"viewer": {"score": None}}
    assert codes(answers[0][1]) == ["NOT_FOUND"]


async def test_scores_lists_only_granted_scorers(
    client: httpx.AsyncClient, vault: Vault, flow: ScoringFlow
) -> None:
    member = await make_member(vault)
    await give_score(flow, member, "reach")
    await give_score(flow, member, "cadence")
    token = await grant_token(member, await make_app(vault), ["score:cadence"])
    body = (
        await gql(client, token.access_token, "{ viewer { scores { scorer { name } } } }")
    ).json()
    assert body["data"]["viewer"]["scores"] == [{"scorer": {"name": "cadence"}}]


async def test_a_read_lands_in_the_access_log_the_member_sees(
    client: httpx.AsyncClient, vault: Vault, flow: ScoringFlow
) -> None:
    member = await make_member(vault)
    await give_score(flow, member)
    token = await grant_token(member, await make_app(vault, name="Reader App"), ["score:reach"])
    await gql(client, token.access_token, '{ viewer { score(scorer: "reach") { value } } }')
    own = await personal_token(member, ["member:manage"])
    query = "{ viewer { accessLog(first: 10) { edges { node { appName scope resource } } } } }"
    body = (await gql(client, own, query)).json()
    entries = [e["node"] for e in body["data"]["viewer"]["accessLog"]["edges"]]
    assert {"appName": "Reader App", "scope": "score:reach", "resource": "score:reach"} in entries


async def test_history_is_a_connection_under_the_history_scope(
    client: httpx.AsyncClient, vault: Vault, flow: ScoringFlow
) -> None:
    member = await make_member(vault)
    await give_score(flow, member, posts=2)
    await give_score(flow, member, posts=5)
    app = await make_app(vault)
    query = """{ viewer { scoreHistory(scorer: "reach", first: 1) {
      edges { cursor node { value change } } pageInfo { hasNextPage endCursor } } } }"""
    token = await grant_token(member, app, ["score:reach"])
    body = (await gql(client, token.access_token, query)).json()
    assert body["data"]["viewer"]["scoreHistory"] is None
    assert codes(body) == ["NOT_FOUND"]
    token = await grant_token(member, app, ["score:reach", "score:reach:history"])
    body = (await gql(client, token.access_token, query)).json()
    history = body["data"]["viewer"]["scoreHistory"]
    assert history["pageInfo"]["hasNextPage"] is True
    assert history["edges"][0]["node"]["change"] == "NEW_DATA"
    after = history["pageInfo"]["endCursor"]
    query2 = query.replace("first: 1)", f'first: 1, after: "{after}")')
    body = (await gql(client, token.access_token, query2)).json()
    page2 = body["data"]["viewer"]["scoreHistory"]
    assert page2["pageInfo"]["hasNextPage"] is False
    assert page2["edges"][0]["node"]["change"] == "FIRST"


async def test_access_log_pages_follow_their_cursors(
    client: httpx.AsyncClient, vault: Vault, flow: ScoringFlow
) -> None:
    member = await make_member(vault)
    await give_score(flow, member)
    token = await grant_token(member, await make_app(vault), ["score:reach"])
    for _ in range(5):
        await gql(client, token.access_token, '{ viewer { score(scorer: "reach") { value } } }')
    own = await personal_token(member, ["member:manage"])
    query = """query($n: Int!, $after: String) { viewer { accessLog(first: $n, after: $after) {
      edges { cursor node { at } } pageInfo { hasNextPage endCursor } } } }"""
    seen, after = [], None
    while True:
        body = (await gql(client, own, query, {"n": 2, "after": after})).json()
        page = body["data"]["viewer"]["accessLog"]
        seen += [e["cursor"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == [f"o{i}" for i in range(1, 6)]
    body = (await gql(client, own, query, {"n": 3, "after": "o1"})).json()
    assert [e["cursor"] for e in body["data"]["viewer"]["accessLog"]["edges"]] == ["o2", "o3", "o4"]


async def test_reading_several_scores_logs_each_and_shares_one_commit(
    client: httpx.AsyncClient, vault: Vault, flow: ScoringFlow
) -> None:
    from coop.consent import accesslog
    from coop.consent.models import AccessLogEntry

    member = await make_member(vault)
    await give_score(flow, member, "reach")
    await give_score(flow, member, "cadence")
    token = await grant_token(member, await make_app(vault), ["score:reach", "score:cadence"])
    writer = accesslog.writer()
    before = writer.flushes
    body = (
        await gql(client, token.access_token, "{ viewer { scores { scorer { name } } } }")
    ).json()
    assert sorted(s["scorer"]["name"] for s in body["data"]["viewer"]["scores"]) == [
        "cadence",
        "reach",
    ]
    logged = await AccessLogEntry.filter(member_id=member.id).values_list("scope", flat=True)
    assert sorted(logged) == ["score:cadence", "score:reach"]
    assert writer.flushes - before == 1

    # Separate fields run concurrently and share a commit too; the same scorer asked twice
    # in one request is read (and logged) once.
    await AccessLogEntry.filter(member_id=member.id).delete()
    before = writer.flushes
    query = (
        '{ viewer { a: score(scorer: "reach") { value } b: score(scorer: "cadence") { value } '
        'c: score(scorer: "reach") { scorer { name } } } }'
    )
    viewer = (await gql(client, token.access_token, query)).json()["data"]["viewer"]
    assert viewer["a"]["value"] > 0 and viewer["b"]["value"] >= 0
    assert viewer["c"] == {"scorer": {"name": "reach"}}
    logged = await AccessLogEntry.filter(member_id=member.id).values_list("scope", flat=True)
    assert sorted(logged) == ["score:cadence", "score:reach"]
    assert writer.flushes - before == 1

    # Reads under sibling objects run together too (two `viewer` aliases).
    before = writer.flushes
    query = (
        '{ one: viewer { score(scorer: "reach") { value } } '
        'two: viewer { score(scorer: "cadence") { value } } }'
    )
    data = (await gql(client, token.access_token, query)).json()["data"]
    assert data["one"]["score"]["value"] > 0 and data["two"]["score"]["value"] >= 0
    assert writer.flushes - before == 1


async def test_history_pages_go_on_past_what_one_history_read_returns(
    client: httpx.AsyncClient, vault: Vault, flow: ScoringFlow, monkeypatch: pytest.MonkeyPatch
) -> None:
    member = await make_member(vault)
    for posts in (1, 2, 3, 4):
        await give_score(flow, member, posts=posts)
        clock.advance(60)
    history = await scoring.list_history(vault=vault, member_id=member.id, scorer="reach")
    newest_first = [v.value for v in history]
    assert len(set(newest_first)) == 4
    monkeypatch.setattr(scoring, "HISTORY_LIMIT", 2)  # stands for the real cap of 1000
    assert len(await scoring.list_history(vault=vault, member_id=member.id, scorer="reach")) == 2
    token = await grant_token(member, await make_app(vault), ["score:reach", "score:reach:history"])
    query = """query($after: String) { viewer { scoreHistory(scorer: "reach", first: 1,
      after: $after) { edges { node { value } } pageInfo { hasNextPage endCursor } } } }"""
    seen, after, more = [], None, True
    while more:
        body = (await gql(client, token.access_token, query, {"after": after})).json()
        history = body["data"]["viewer"]["scoreHistory"]
        seen += [e["node"]["value"] for e in history["edges"]]
        more, after = history["pageInfo"]["hasNextPage"], history["pageInfo"]["endCursor"]
    assert seen == newest_first
    body = (await gql(client, token.access_token, query, {"after": "o4"})).json()
    assert body["data"]["viewer"]["scoreHistory"]["edges"] == []  # past the end: an empty page


async def test_scores_computed_at_the_same_instant_keep_one_order_everywhere(
    client: httpx.AsyncClient, vault: Vault, flow: ScoringFlow
) -> None:
    """Ties on computed_at (two runs in the same microsecond, a restored backup) must not make
    history pages repeat or skip a score, nor let "the current score" differ between reads."""
    from coop.scoring.models import Score

    member = await make_member(vault)
    for posts in (1, 2, 3, 4, 5):
        await give_score(flow, member, posts=posts)
    instant = (await Score.filter(member_id=member.id).first()).computed_at  # type: ignore[union-attr]
    await Score.filter(member_id=member.id).update(computed_at=instant)
    pages = [
        await scoring.list_history(
            vault=vault, member_id=member.id, scorer="reach", limit=1, offset=offset
        )
        for offset in range(5)
    ]
    ids = [page[0].id for page in pages]
    assert len(set(ids)) == 5
    token = await grant_token(member, await make_app(vault), ["score:reach"])
    for _ in range(3):
        body = (
            await gql(client, token.access_token, '{ viewer { score(scorer: "reach") { value } } }')
        ).json()
        assert body["data"]["viewer"]["score"]["value"] == pages[0][0].value
