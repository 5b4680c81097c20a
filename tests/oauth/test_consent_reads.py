"""The consent page says, under each requested score, what its scorer reads, in the Scores
page's words (issue 16 point 4): fields where the scorer declares them, whole kinds where
it does not, and plainly when the scorer is not installed."""

from __future__ import annotations

import httpx
import pytest

from coop.apps.terms import Terms
from coop.scoring.validate import ScorerMeta
from coop.vault import Vault
from coop.web.scopes import consent_rows
from tests.oauth.support import authorize_params, pkce, register

pytestmark = pytest.mark.usefixtures("db")


async def test_each_requested_score_says_what_its_scorer_reads(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    params = authorize_params(reg, pkce()[1], scope="profile score:cadence score:reach:band")
    page = (await member_client.get("/oauth/authorize", params=params)).text
    # cadence declares fields (dates and networks of posts and activity), reach does not.
    assert (
        "What this scorer reads: posts you published: dates and networks only; "
        "your public activity: dates and networks only" in page
    )
    assert "What this scorer reads: posts you published, with their reaction counts" in page
    scorers = (await member_client.get("/scorers")).text
    assert "<li>posts you published: dates and networks only</li>" in scorers
    assert "<li>posts you published, with their reaction counts</li>" in scorers


def test_a_score_of_a_scorer_not_installed_says_so_and_without_a_registry_nothing() -> None:
    terms = Terms()
    meta = ScorerMeta(
        name="steady",
        version="1.0.0",
        title="Steady",
        description="",
        reads=("post", "audience"),
        range=(0.0, 100.0),
        needs_text=False,
        homepage="",
        fields=(("post", ("occurred_at",)),),
    )
    rows = consent_rows(["score:steady", "score:gone"], terms, {}, {"steady": meta})
    assert rows[0].reads == (
        "posts you published: dates only",
        "how many followers you have (a number, never who they are)",
    )
    assert not rows[0].missing
    assert rows[1].missing and rows[1].reads == ()
    unknown = consent_rows(["score:gone"], terms, {}, None)
    assert not unknown[0].missing and unknown[0].reads == ()
