from __future__ import annotations

import httpx

from coop.vault import Vault
from tests.oauth.support import authorize, redeem, register


async def test_code_flow_issues_tokens(member_client: httpx.AsyncClient, vault: Vault) -> None:
    reg = await register(vault)
    flow = await authorize(member_client, reg)
    response = await redeem(member_client, reg, flow)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
