"""Upkeep: stale codes and tokens are purged, recent ones are kept for reuse detection."""

from __future__ import annotations

from coop.consent import service as consent
from coop.consent import tokens
from coop.consent.models import AuthorizationCode, OAuthToken
from coop.members.models import Member
from coop.types import clock
from tests.consent.conftest import Issued


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
