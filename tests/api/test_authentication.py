"""Token decisions over HTTP: revocation, pause, expiry and deletion refuse the very next
request (GQ-03, GQ-04), and the API answers exactly as consent's one decision
(`resolve_bearer`, held to the authorization matrix's oracle there) says."""

from __future__ import annotations

import httpx

from coop.consent import grants, personal
from coop.consent import service as consent
from coop.jobs.scoring import ScoringFlow
from coop.types import clock
from coop.vault import Vault
from tests.api.conftest import give_score
from tests.api.factories import gql, grant_token, make_app, make_member, personal_token

READ = '{ viewer { score(scorer: "reach") { value } } }'


async def _same_decision(client: httpx.AsyncClient, token: str) -> int:
    """The HTTP status, after checking that the API let in exactly whom consent lets in."""
    response = await gql(client, token, READ)
    expected = await consent.resolve_bearer(token)
    assert (response.status_code == 200) == (expected is not None)
    if response.status_code == 401:
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
    return response.status_code


async def test_revoked_grant_refuses_the_very_next_request(
    client: httpx.AsyncClient, vault: Vault, flow: ScoringFlow
) -> None:
    member = await make_member(vault)
    await give_score(flow, member)
    token = await grant_token(member, await make_app(vault), ["score:reach"])
    assert await _same_decision(client, token.access_token) == 200
    await grants.revoke_grant(member_id=member.id, grant_id=token.grant_id)
    response = await gql(client, token.access_token, READ)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert "data" not in response.json()


async def test_paused_sharing_refuses_and_resuming_restores(
    client: httpx.AsyncClient, vault: Vault, flow: ScoringFlow
) -> None:
    member = await make_member(vault)
    await give_score(flow, member)
    token = await grant_token(member, await make_app(vault), ["score:reach"])
    await grants.pause_sharing(member_id=member.id)
    assert await _same_decision(client, token.access_token) == 401
    await grants.resume_sharing(member_id=member.id)
    assert await _same_decision(client, token.access_token) == 200


async def test_expired_token_and_expired_grant_are_refused(
    client: httpx.AsyncClient, vault: Vault, flow: ScoringFlow
) -> None:
    member = await make_member(vault)
    app = await make_app(vault)
    token = await grant_token(member, app, ["score:reach"])
    clock.advance(3601)  # access tokens live one hour
    assert await _same_decision(client, token.access_token) == 401
    clock.reset()
    short = await grant_token(member, app, ["score:reach"], lifetime="1d")
    assert await _same_decision(client, short.access_token) == 200
    clock.advance(86_401)
    assert await _same_decision(client, short.access_token) == 401


async def test_revoked_and_expired_personal_tokens_are_refused(
    client: httpx.AsyncClient, vault: Vault
) -> None:
    member = await make_member(vault)
    token = await personal_token(member, ["profile"], lifetime="30d")
    assert await _same_decision(client, token) == 200
    clock.advance(31 * 86_400)
    assert await _same_decision(client, token) == 401
    clock.reset()
    rows = await personal.list_personal_tokens(member_id=member.id)
    await personal.revoke_personal_token(member_id=member.id, token_id=rows[0].id)
    assert await _same_decision(client, token) == 401


async def test_deleted_account_refuses_the_next_request(
    client: httpx.AsyncClient, vault: Vault, flow: ScoringFlow
) -> None:
    member = await make_member(vault)
    await give_score(flow, member)
    app_token = await grant_token(member, await make_app(vault), ["score:reach"])
    own = await personal_token(member, ["member:manage"])
    mutation = 'mutation { deleteAccount(confirm: "delete my account") { __typename } }'
    body = (await gql(client, own, mutation)).json()
    assert body["data"]["deleteAccount"]["__typename"] == "DeleteAccountSuccess"
    for token in (app_token.access_token, own):
        assert await _same_decision(client, token) == 401
