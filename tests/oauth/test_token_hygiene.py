"""Token hygiene (OA-19): entropy, no collisions, only hashes at rest, never in a URL."""

from __future__ import annotations

import base64

import httpx
import pytest
from tortoise import Tortoise

from coop.consent.tokens import ACCESS_PREFIX, new_secret
from coop.vault import Vault
from tests.oauth.support import authorize, redeem, register


def test_tokens_carry_256_random_bits_and_do_not_collide() -> None:
    values = {new_secret(ACCESS_PREFIX) for _ in range(100_000)}
    assert len(values) == 100_000
    sample = next(iter(values)).removeprefix(ACCESS_PREFIX)
    assert len(base64.urlsafe_b64decode(sample + "=")) == 32


async def dump_database() -> str:
    """Every row of every table, as text (what a stolen backup would show)."""
    out = []
    for model in Tortoise.apps["models"].values():  # type: ignore[index]
        out.append(repr(await model.all().values()))
    return "\n".join(out)


@pytest.mark.usefixtures("db")
async def test_database_holds_only_hashes_of_codes_tokens_and_secrets(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    flow = await authorize(member_client, reg)
    tokens = (await redeem(member_client, reg, flow)).json()
    dump = await dump_database()
    assert reg.client_secret
    for raw in (flow.code, tokens["access_token"], tokens["refresh_token"], reg.client_secret):
        assert raw not in dump
        assert raw.split("_", 2)[2] not in dump


@pytest.mark.usefixtures("db")
async def test_bearer_token_in_the_query_string_is_not_accepted(
    member_client: httpx.AsyncClient, vault: Vault
) -> None:
    reg = await register(vault)
    flow = await authorize(member_client, reg)
    token = (await redeem(member_client, reg, flow)).json()["access_token"]
    member_client.cookies.clear()
    response = await member_client.post(
        "/graphql", params={"access_token": token}, json={"query": "{ __typename }"}
    )
    assert response.status_code == 401
