"""Personal access tokens: shown once, hashed, scoped, expiring, revocable, logged as "you"."""

from __future__ import annotations

import pytest

from coop.consent import service as consent
from coop.consent.models import AccessLogEntry, PersonalToken
from coop.errors import InvalidInputError, InvalidScopeError, NotFoundError
from coop.members.models import Member
from coop.types import clock
from coop.vault import Vault
from tests.oauth.support import make_member


async def test_personal_token_is_stored_hashed_and_resolves_to_its_owner(member: Member) -> None:
    created = await consent.create_personal_token(
        member_id=member.id, name="laptop", scopes=["score:reach", "member:manage"], lifetime="30d"
    )
    assert created.token.startswith("coop_pat_")
    row = await PersonalToken.get(id=created.row.id)
    assert created.token not in repr(await PersonalToken.all().values())
    assert row.token_hash != created.token
    principal = await consent.resolve_bearer(created.token)
    assert principal is not None and principal.is_personal
    assert principal.member_id == member.id
    assert principal.scopes == frozenset({"score:reach", "member:manage"})


async def test_owner_reads_are_logged_as_you(member: Member) -> None:
    created = await consent.create_personal_token(
        member_id=member.id, name="cli", scopes=["profile"], lifetime="forever"
    )
    principal = await consent.resolve_bearer(created.token)
    assert principal is not None
    assert await consent.authorize_read(principal=principal, scope="profile", resource="profile")
    entry = await AccessLogEntry.get()
    assert entry.app_name == "you" and entry.personal_token_id == created.row.id


async def test_revoked_or_expired_personal_tokens_stop_working(
    member: Member, vault: Vault
) -> None:
    created = await consent.create_personal_token(
        member_id=member.id, name="a", scopes=["profile"], lifetime="30d"
    )
    stranger = await make_member(vault)
    with pytest.raises(NotFoundError):
        await consent.revoke_personal_token(member_id=stranger.id, token_id=created.row.id)
    await consent.revoke_personal_token(member_id=member.id, token_id=created.row.id)
    assert await consent.resolve_bearer(created.token) is None
    expiring = await consent.create_personal_token(
        member_id=member.id, name="b", scopes=["profile"], lifetime="30d"
    )
    clock.advance(30 * 86400 + 1)
    assert await consent.resolve_bearer(expiring.token) is None


@pytest.mark.parametrize(
    ("name", "scopes", "lifetime", "error"),
    [
        ("", ["profile"], "30d", InvalidInputError),
        ("a", [], "30d", InvalidScopeError),
        ("a", ["email"], "30d", InvalidScopeError),
        ("a", ["profile"], "10y", InvalidInputError),
    ],
)
async def test_invalid_personal_tokens_are_refused(
    member: Member, name: str, scopes: list[str], lifetime: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await consent.create_personal_token(
            member_id=member.id, name=name, scopes=scopes, lifetime=lifetime
        )
