"""Fixtures for consent tests: a member, an app, and a live grant with tokens."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from tortoise.transactions import in_transaction

from coop.apps.service import RegisteredApp
from coop.consent import grants, tokens
from coop.consent.models import Grant
from coop.members.models import Member
from coop.vault import Vault
from tests.oauth.support import make_member, pkce, register


@dataclass
class Issued:
    reg: RegisteredApp
    grant: Grant
    access_token: str
    refresh_token: str


async def issue(
    member_id: uuid.UUID,
    reg: RegisteredApp,
    *,
    scopes: list[str] | None = None,
    lifetime: str = "30d",
) -> Issued:
    """A grant and its first tokens, through the same service calls the endpoints make."""
    verifier, challenge = pkce()
    async with in_transaction():
        grant = await grants.create_grant(
            member_id=member_id,
            app_id=reg.app.id,
            scopes=scopes or ["profile", "score:reach"],
            lifetime=lifetime,
            terms_version=reg.app.terms_version,  # the words the consent page showed
        )
        code = await tokens.create_code(
            grant=grant,
            client_id=reg.app.client_id,
            redirect_uri=reg.app.redirect_uris[0],
            redirect_uri_given=True,
            code_challenge=challenge,
        )
    out = await tokens.exchange_code(
        code=code,
        client_id=reg.app.client_id,
        redirect_uri=reg.app.redirect_uris[0],
        code_verifier=verifier,
    )
    assert out.refresh_token
    return Issued(reg, grant, out.access_token, out.refresh_token)


@pytest.fixture
async def member(db: str, vault: Vault) -> Member:
    return await make_member(vault)


@pytest.fixture
async def issued(member: Member, vault: Vault) -> Issued:
    return await issue(member.id, await register(vault))
