"""Upkeep: stale codes and tokens are purged, recent ones are kept for reuse detection."""

from __future__ import annotations

from coop.consent import service as consent
from coop.consent import tokens
from coop.consent.models import AuthorizationCode, OAuthToken
from coop.members.models import Member
from coop.types import clock
from coop.vault import Vault
from tests.consent.conftest import Issued, issue
from tests.oauth.support import register


async def test_purge_keeps_recent_rows_and_drops_long_dead_ones(
    issued: Issued, member: Member
) -> None:
    assert await tokens.purge_stale() == 0
    await consent.revoke_grant(member_id=member.id, grant_id=issued.grant.id)
    clock.advance(29 * 86400)
    assert await tokens.purge_stale() == 0
    clock.advance(2 * 86400)
    assert await tokens.purge_stale() >= 2
    assert await OAuthToken.all().count() == 0
    assert await AuthorizationCode.all().count() == 0


async def test_spent_refresh_rows_of_a_grant_until_revoked_are_purged(
    member: Member, vault: Vault
) -> None:
    """A grant "until revoked" has no end date, so its rows never 'expire': each hourly
    refresh leaves a spent row behind, which must go 30 days after it was spent."""
    item = await issue(member.id, await register(vault), lifetime="forever")
    refresh_token = item.refresh_token
    for _ in range(3):
        clock.advance(3600)
        issued = await tokens.refresh(
            refresh_token=refresh_token, client_id=item.reg.app.client_id, scope=None
        )
        refresh_token = issued.refresh_token
    assert await OAuthToken.filter(grant_id=item.grant.id).count() == 4
    clock.advance(29 * 86400)
    assert await tokens.purge_stale() == 0  # still recognised as spent if replayed
    clock.advance(2 * 86400)
    assert await tokens.purge_stale() == 4  # three spent rows and the authorization code
    assert await AuthorizationCode.all().count() == 0
    (live,) = await OAuthToken.filter(grant_id=item.grant.id)
    assert live.refresh_used_at is None and live.revoked_at is None
    again = await tokens.refresh(
        refresh_token=refresh_token, client_id=item.reg.app.client_id, scope=None
    )
    assert again.access_token
