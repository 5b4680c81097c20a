"""Codes, tokens and secrets never reach the logs."""

from __future__ import annotations

import logging

import httpx
import pytest

from coop.vault import Vault
from tests.oauth.support import authorize, client_auth, redeem, register, token_request

pytestmark = pytest.mark.usefixtures("db")


async def test_the_whole_flow_logs_no_code_token_or_secret(
    member_client: httpx.AsyncClient, vault: Vault, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    reg = await register(vault)
    flow = await authorize(member_client, reg)
    first = (await redeem(member_client, reg, flow)).json()
    second = (
        await token_request(
            member_client,
            reg,
            {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        )
    ).json()
    await member_client.post(
        "/oauth/revoke", data={"token": second["refresh_token"]}, auth=client_auth(reg)
    )
    await redeem(member_client, reg, flow)  # a reuse, refused
    # The test's own HTTP client logs its request URLs; only the server's records count.
    server = [r for r in caplog.records if not r.name.startswith("httpx")]
    text = "\n".join(r.getMessage() for r in server) + repr([r.__dict__ for r in server])
    assert reg.client_secret
    for raw in (
        flow.code,
        flow.verifier,
        first["access_token"],
        first["refresh_token"],
        second["access_token"],
        reg.client_secret,
    ):
        assert raw not in text
