"""With governance on, an app can ask for (and a member can grant) only the scores of scorers
the members approved: an installed but unapproved scorer is refused at /oauth/authorize
(`invalid_scope`, shown and submitted alike), is left out of the metadata's scopes and the
API's catalogue, and a refresh cannot widen a grant to it. Tested as the attacking app would
try it, against the real sandbox's reference scorers (reach approved, cadence not)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import pytest

from coop.config import Settings
from coop.consent.scopes import known_scorer_names
from coop.governance.models import Approval, GovernanceState, Proposal
from coop.jobs.scoring import flow_for
from coop.members.models import Member
from coop.types import utcnow
from coop.vault import Vault
from tests.oauth.support import (
    authorize,
    authorize_params,
    csrf_from,
    log_in,
    make_member,
    pkce,
    query_of,
    redeem,
    register,
    terms_version_from,
    token_request,
)

pytestmark = [pytest.mark.usefixtures("db"), pytest.mark.timeout(180)]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace(settings, governance=True)


@pytest.fixture
async def member_client(client: httpx.AsyncClient, vault: Vault, settings: Settings) -> Any:
    member: Member = await make_member(vault)
    await log_in(client, vault, settings, member)
    return client


@pytest.fixture
async def only_reach_approved(app: Any) -> None:
    """Governance was switched on with reach installed; cadence was installed afterwards, so
    its version waits for a vote (discovery opens the proposal)."""
    metas = {m.name: m for m in await flow_for(app.state.runtime).installed()}
    assert {"reach", "cadence"} <= set(metas)
    now = utcnow()
    await GovernanceState.create(id=1, baseline_at=now)
    await Approval.create(
        scorer="reach", version=metas["reach"].version, source="baseline", approved_at=now
    )


@pytest.mark.usefixtures("only_reach_approved")
async def test_an_app_asking_for_an_unapproved_scorer_gets_invalid_scope_and_no_page(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    for scope in ("score:cadence", "profile score:cadence:band", "score:reach score:cadence"):
        params = authorize_params(reg, pkce()[1], scope=scope)
        answer = await member_client.get("/oauth/authorize", params=params)
        assert answer.status_code == 302, (scope, answer.text)
        query = query_of(answer.headers["location"])
        assert query["error"] == "invalid_scope" and query["state"] == params["state"]
        assert "cadence" in query["error_description"]
    # The approved scorer is asked for and shown as before, and the page names no other.
    params = authorize_params(reg, pkce()[1], scope="profile score:reach")
    page = await member_client.get("/oauth/authorize", params=params)
    assert page.status_code == 200
    assert "Reach" in page.text and "Cadence" not in page.text
    assert await Proposal.filter(scorer="cadence", kind="install").exists()


@pytest.mark.usefixtures("only_reach_approved")
async def test_a_forged_decision_granting_an_unapproved_scorer_issues_no_code(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    shown = authorize_params(reg, pkce()[1], scope="profile score:reach")
    page = await member_client.get("/oauth/authorize", params=shown)
    assert page.status_code == 200
    # The submitted form names the unapproved scorer, in the request and among the choices.
    forged = {
        **shown,
        "scope": "profile score:reach score:cadence",
        "csrf_token": csrf_from(page.text),
        "terms_version": terms_version_from(page.text),
        "decision": "allow",
        "grant_scope": ["profile", "score:reach", "score:cadence"],
        "lifetime": "30d",
    }
    answer = await member_client.post(
        "/oauth/authorize", data=forged, headers={"Sec-Fetch-Site": "same-origin"}
    )
    assert answer.status_code == 303, answer.text
    query = query_of(answer.headers["location"])
    assert query["error"] == "invalid_scope" and "code" not in query


@pytest.mark.usefixtures("only_reach_approved")
async def test_a_refresh_cannot_widen_a_grant_to_an_unapproved_scorer(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    flow = await authorize(member_client, reg, scope="profile score:reach")
    issued = await redeem(member_client, reg, flow)
    assert issued.status_code == 200, issued.text
    assert issued.json()["scope"] == "profile score:reach"
    refresh = issued.json()["refresh_token"]
    widened = await token_request(
        member_client,
        reg,
        {"grant_type": "refresh_token", "refresh_token": refresh, "scope": "score:cadence"},
    )
    assert widened.status_code == 400
    assert widened.json()["error"] == "invalid_scope"


@pytest.mark.usefixtures("only_reach_approved")
async def test_metadata_api_and_personal_tokens_offer_only_approved_scorers(
    app: Any, client: httpx.AsyncClient
) -> None:
    meta = (await client.get("/.well-known/oauth-authorization-server")).json()
    assert "score:reach" in meta["scopes_supported"]
    assert not any("cadence" in scope for scope in meta["scopes_supported"])
    # The names scope validation uses everywhere (authorize, personal tokens).
    assert await known_scorer_names(app.state.runtime.known_scorers) == {"reach"}
    available = [m.name for m in await flow_for(app.state.runtime).available()]
    assert available == ["reach"]
