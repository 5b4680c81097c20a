"""The member's own consent reads (coop.consent.overview, one raw statement each) give what
the ORM functions give: grants with their apps and last reads, the sharing pause, the access
log in pages, for every grant state and with ties in time."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import cast

from coop.apps.models import App
from coop.consent import accesslog, grants, overview
from coop.members.models import Member
from coop.types import clock, utcnow
from coop.vault import Vault
from tests.consent.conftest import issue
from tests.oauth.support import make_member, register


async def _orm_summaries(member_id: uuid.UUID) -> list[overview.GrantSummary]:
    last = await accesslog.last_access(member_id=member_id)
    return [
        overview.GrantSummary(
            id=g.id,
            app_name=cast(App, g.app).name,
            scopes=list(g.scopes),
            status=g.status,
            created_at=g.created_at,
            expires_at=g.expires_at,
            last_access_at=last.get(g.id),
            held=g.held,
        )
        for g in await grants.list_grants(member_id=member_id, live_only=False)
    ]


async def _orm_log(member_id: uuid.UUID, offset: int, limit: int) -> list[overview.LogLine]:
    page = await accesslog.list_entries(member_id=member_id, page=1, per_page=offset + limit)
    return [
        overview.LogLine(app_name=e.app_name, scope=e.scope, resource=e.resource, at=e.at)
        for e in page.entries[offset:]
    ]


async def _same_as_the_orm(member_id: uuid.UUID) -> list[overview.GrantSummary]:
    found = await overview.grant_summaries(member_id=member_id)
    assert found == await _orm_summaries(member_id)
    assert await overview.sharing_paused(member_id=member_id) is await grants.is_sharing_paused(
        member_id=member_id
    )
    return found


async def test_grants_and_the_pause_read_what_the_orm_reads_in_every_state(
    member: Member, vault: Vault
) -> None:
    assert await _same_as_the_orm(member.id) == []
    other = await make_member(vault)
    mine = [
        await issue(member.id, await register(vault, name=name), lifetime=lifetime)
        for name, lifetime in [("Café ☕", "30d"), ("Beta", "forever"), ("Gamma", "30d")]
    ]
    await issue(other.id, await register(vault, name="Not theirs"))
    first = await _same_as_the_orm(member.id)
    assert [g.app_name for g in first] == ["Gamma", "Beta", "Café ☕"]  # newest first
    assert all(g.last_access_at is None for g in first)
    # Reads: one grant read twice (its newest read counts), one at a whole second.
    whole = utcnow().replace(microsecond=0) - timedelta(minutes=5)
    for grant, at in [(mine[0], whole), (mine[1], utcnow()), (mine[1], whole)]:
        await accesslog.record(
            member_id=member.id,
            scope="profile",
            resource="profile",
            app_name=grant.reg.app.name,
            grant_id=grant.grant.id,
            app_id=grant.reg.app.id,
            at=at,
        )
    read = {g.app_name: g.last_access_at for g in await _same_as_the_orm(member.id)}
    assert read["Café ☕"] == whole and read["Beta"] is not None and read["Beta"] > whole
    # Paused by itself (held), revoked, sharing paused, expired.
    await grants.pause_grant(member_id=member.id, grant_id=mine[0].grant.id)
    await grants.revoke_grant(member_id=member.id, grant_id=mine[1].grant.id)
    held = {g.app_name: (g.status, g.held) for g in await _same_as_the_orm(member.id)}
    assert held["Café ☕"] == ("paused", True) and held["Beta"][0] == "revoked"
    await grants.pause_sharing(member_id=member.id)
    assert await overview.sharing_paused(member_id=member.id)
    await _same_as_the_orm(member.id)
    await grants.resume_sharing(member_id=member.id)
    clock.advance(31 * 86400)
    await grants.expire_due_grants(member_id=member.id)
    statuses = {g.app_name: g.status for g in await _same_as_the_orm(member.id)}
    assert statuses["Gamma"] == "expired"
    assert not await overview.sharing_paused(member_id=member.id)


async def test_log_pages_read_what_the_orm_reads_with_ties_in_time(
    member: Member, vault: Vault
) -> None:
    other = await make_member(vault)
    assert await overview.log_lines(member_id=member.id, offset=0, limit=5) == []
    start = utcnow().replace(microsecond=0)
    for i in range(9):
        at = start - timedelta(seconds=i // 3)  # three reads per instant: ties broken by id
        for whose in (member.id, other.id):
            await accesslog.record(
                member_id=whose,
                scope=f"score:s{i}",
                resource=f"r{i}",
                app_name="you" if i % 2 else f"App {i}",
                at=at,
            )
    pages = 0
    for limit in (1, 2, 4, 10):
        for offset in range(0, 11):
            found = await overview.log_lines(member_id=member.id, offset=offset, limit=limit)
            assert found == await _orm_log(member.id, offset, limit), (offset, limit)
            pages += bool(found)
    assert pages == 9 * 4  # every offset below 9 read something, at each of 4 page sizes
    whole = await overview.log_lines(member_id=member.id, offset=0, limit=100)
    assert [line.at for line in whole] == sorted((line.at for line in whole), reverse=True)
    assert {line.resource for line in whole} == {f"r{i}" for i in range(9)}
