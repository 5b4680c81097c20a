"""A score's breakdown keeps the scorer's order ("week 1" before "week 10") in the API, on the
score page's source (the service) and in the export (issue 16)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import httpx

from coop.jobs.scoring import ScoringFlow
from coop.portability.export import _explanation
from coop.scoring import service as scoring
from coop.scoring.runner import InProcessRunner
from coop.scoring.spec import API_VERSION, InputRecord, ScoreResult
from coop.vault import Vault
from tests.api.factories import gql, grant_token, make_app, make_member

WEEKS = [f"week {i}" for i in range(1, 13)]  # alphabetically "week 1", "week 10", …


class WeeksScorer:
    api_version = API_VERSION
    name = "weeks"
    version = "1.0"
    title = "Weeks"
    description = "One row a week."
    reads = ("post",)
    range = (0.0, 100.0)
    needs_text = False
    homepage = ""

    def score(self, records: Sequence[InputRecord], now: datetime) -> ScoreResult:
        return ScoreResult(value=1.0, breakdown={w: float(i) for i, w in enumerate(WEEKS)})


async def test_breakdown_rows_keep_the_scorers_order_everywhere(
    client: httpx.AsyncClient, vault: Vault, flow: ScoringFlow
) -> None:
    assert isinstance(flow.runner, InProcessRunner)
    meta = flow.runner.add(WeeksScorer)
    member = await make_member(vault)
    await scoring.enable_scorer(member_id=member.id, meta=meta)
    outcome = await scoring.compute_score(
        vault=vault, runner=flow.runner, member_id=member.id, scorer="weeks", records=[]
    )
    assert outcome.status == "stored"
    [view] = await scoring.list_current_scores(vault=vault, member_id=member.id)
    assert view.explanation is not None
    assert list(view.explanation.breakdown) == WEEKS

    token = (await grant_token(member, await make_app(vault), ["score:weeks"])).access_token
    query = '{ viewer { score(scorer: "weeks") { explanation { breakdown { name value } } } } }'
    body = (await gql(client, token, query)).json()
    assert "errors" not in body, body
    rows = body["data"]["viewer"]["score"]["explanation"]["breakdown"]
    assert [r["name"] for r in rows] == WEEKS
    assert [r["value"] for r in rows] == [float(i) for i in range(12)]


def test_the_export_lists_rows_in_order_and_reads_older_scores_too() -> None:
    stored = {"reasons": [], "breakdown": [[w, 1.0] for w in reversed(WEEKS)]}
    assert [r["name"] for r in _explanation(stored)["breakdown"]] == list(reversed(WEEKS))
    older = {"breakdown": {"b": 2.0, "a": 1.0}}  # stored as an object before rows kept order
    assert _explanation(older)["breakdown"] == [
        {"name": "b", "value": 2.0},
        {"name": "a", "value": 1.0},
    ]
