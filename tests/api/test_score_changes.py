"""Score.change (causes that add up), Score.stale and Score.version, acceptScorerVersion,
keepScorerVersion."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from coop_score_reach import ReachScorer

from coop.jobs.scoring import ScoringFlow
from coop.members.models import Member
from coop.scoring import service as scoring
from coop.scoring.runner import InProcessRunner
from coop.types import utcnow
from coop.vault import Vault
from tests.api.factories import gql, grant_token, make_app, make_member, personal_token

SCORE = """{ viewer { score(scorer: "reach") { value version stale
  explanation { contributions { record } }
  change { previous delta causes { kind amount reason record } } } } }"""
SETTINGS = "{ viewer { scorerSettings { scorer { name version } enabled awaitingConsent } } }"
ACCEPT = """mutation { acceptScorerVersion(name: "reach") { __typename
  ... on SetScorerSuccess { scorer { scorer { version } awaitingConsent } }
  ... on ScorerError { code } } }"""


KEEP = """mutation { keepScorerVersion(name: "reach") { __typename
  ... on SetScorerSuccess { scorer { scorer { version } enabled } }
  ... on ScorerError { code message } } }"""


class NewerReach(ReachScorer):
    version = "1.9.0"  # reads the same: a preview waits for the member


class WiderReach(ReachScorer):
    version = "2.0.0"
    reads = ("post", "repository", "activity")


def posts(n: int) -> list[scoring.MemberRecord]:
    now = utcnow()
    return [
        scoring.MemberRecord(
            record_id=uuid.uuid5(uuid.NAMESPACE_URL, f"post-{i}"),
            kind="post",
            occurred_at=now - timedelta(days=i + 1),
            counts={"favourites": 10 * (i + 1), "reblogs": i},
        )
        for i in range(n)
    ]


async def score(flow: ScoringFlow, member: Member, n: int) -> None:
    await scoring.compute_score(
        vault=flow.vault, runner=flow.runner, member_id=member.id, scorer="reach", records=posts(n)
    )


async def read(client: httpx.AsyncClient, token: str) -> dict[str, object]:
    body = (await gql(client, token, SCORE)).json()
    assert "errors" not in body, body
    found: dict[str, object] = body["data"]["viewer"]["score"]
    return found


async def test_an_app_sees_the_change_and_causes_that_add_up_to_it(
    client: httpx.AsyncClient, vault: Vault, flow: ScoringFlow
) -> None:
    member = await make_member(vault)
    await scoring.enable_scorer(member_id=member.id, meta=flow.runner.meta("reach"))
    await score(flow, member, 2)
    token = (await grant_token(member, await make_app(vault), ["score:reach"])).access_token
    first = await read(client, token)
    assert (first["change"], first["stale"], first["version"]) == (None, False, ReachScorer.version)
    await score(flow, member, 3)
    now = await read(client, token)
    change = now["change"]
    assert isinstance(change, dict)
    assert change["previous"] == first["value"]
    assert abs(change["delta"] - (now["value"] - first["value"])) < 1e-9
    assert abs(sum(c["amount"] for c in change["causes"]) - change["delta"]) < 1e-9
    assert change["causes"][0]["kind"] == "NEW_DATA"
    assert "new post of" in change["causes"][0]["reason"]
    refs = {c["record"] for c in now["explanation"]["contributions"]}  # type: ignore[index]
    assert change["causes"][0]["record"] in refs


async def test_a_version_that_reads_more_is_stale_until_the_member_accepts_it(
    client: httpx.AsyncClient, vault: Vault, flow: ScoringFlow
) -> None:
    member = await make_member(vault)
    await scoring.enable_scorer(member_id=member.id, meta=flow.runner.meta("reach"))
    await score(flow, member, 2)
    app_token = (await grant_token(member, await make_app(vault), ["score:reach"])).access_token
    pat = await personal_token(member, ["member:manage"])
    assert isinstance(flow.runner, InProcessRunner)
    flow.runner.add(WiderReach)  # the operator installed reach 2.0.0
    await score(flow, member, 3)
    stale = await read(client, app_token)
    assert (stale["stale"], stale["version"], stale["change"]) == (True, ReachScorer.version, None)
    settings = (await gql(client, pat, SETTINGS)).json()["data"]["viewer"]["scorerSettings"]
    reach = next(s for s in settings if s["scorer"]["name"] == "reach")
    assert reach["awaitingConsent"] == "your public activity (dates and types, no content)"

    accepted = (await gql(client, pat, ACCEPT)).json()["data"]["acceptScorerVersion"]
    assert accepted == {
        "__typename": "SetScorerSuccess",
        "scorer": {"scorer": {"version": "2.0.0"}, "awaitingConsent": None},
    }
    fresh = await read(client, app_token)
    assert (fresh["stale"], fresh["version"]) == (False, "2.0.0")


async def test_accepting_a_scorer_that_is_not_enabled_is_not_found(
    client: httpx.AsyncClient, vault: Vault, flow: ScoringFlow
) -> None:
    member = await make_member(vault)
    pat = await personal_token(member, ["member:manage"])
    body = (await gql(client, pat, ACCEPT)).json()
    assert body["data"]["acceptScorerVersion"] == {"__typename": "ScorerError", "code": "NOT_FOUND"}


async def test_keeping_the_current_score_freezes_it_and_the_new_version_does_not_run(
    client: httpx.AsyncClient, vault: Vault, flow: ScoringFlow
) -> None:
    member = await make_member(vault)
    await scoring.enable_scorer(member_id=member.id, meta=flow.runner.meta("reach"))
    await score(flow, member, 2)
    app_token = (await grant_token(member, await make_app(vault), ["score:reach"])).access_token
    pat = await personal_token(member, ["member:manage"])
    before = await read(client, app_token)
    assert isinstance(flow.runner, InProcessRunner)
    flow.runner.add(NewerReach)  # the operator installed reach 1.9.0
    await score(flow, member, 3)  # a preview, not a score

    kept = (await gql(client, pat, KEEP)).json()["data"]["keepScorerVersion"]
    assert kept == {
        "__typename": "SetScorerSuccess",
        "scorer": {"scorer": {"version": "1.9.0"}, "enabled": True},
    }
    await score(flow, member, 4)  # new data: the kept score stays
    frozen = await read(client, app_token)
    assert (frozen["value"], frozen["version"], frozen["stale"]) == (
        before["value"],
        ReachScorer.version,
        True,
    )
    again = (await gql(client, pat, KEEP)).json()["data"]["keepScorerVersion"]
    assert again == kept  # keeping twice is keeping

    accepted = (await gql(client, pat, ACCEPT)).json()["data"]["acceptScorerVersion"]
    assert accepted["__typename"] == "SetScorerSuccess"  # still possible after keeping
    assert (await read(client, app_token))["version"] == "1.9.0"


async def test_keeping_needs_a_new_version_and_an_enabled_scorer(
    client: httpx.AsyncClient, vault: Vault, flow: ScoringFlow
) -> None:
    member = await make_member(vault)
    pat = await personal_token(member, ["member:manage"])
    body = (await gql(client, pat, KEEP)).json()["data"]["keepScorerVersion"]
    assert (body["__typename"], body["code"]) == ("ScorerError", "NOT_FOUND")
    await scoring.enable_scorer(member_id=member.id, meta=flow.runner.meta("reach"))
    await score(flow, member, 2)
    body = (await gql(client, pat, KEEP)).json()["data"]["keepScorerVersion"]
    assert body == {
        "__typename": "ScorerError",
        "code": "INVALID",
        "message": "There is no new version to decline.",
    }


async def test_keeping_needs_member_manage(
    client: httpx.AsyncClient, vault: Vault, flow: ScoringFlow
) -> None:
    member = await make_member(vault)
    await scoring.enable_scorer(member_id=member.id, meta=flow.runner.meta("reach"))
    pat = await personal_token(member, ["profile"])
    body = (await gql(client, pat, KEEP)).json()
    assert body["data"]["keepScorerVersion"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
