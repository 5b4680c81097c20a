"""The one consent check: allow/deny by scope, every allowed read logged durably, group
commit, and bearer resolution (including personal access tokens)."""

from __future__ import annotations

import asyncio

import pytest

from coop.consent import accesslog
from coop.consent import service as consent
from coop.consent.models import AccessLogEntry
from coop.members.models import Member
from coop.types import clock
from tests.consent.conftest import Issued


async def test_allowed_read_is_logged_with_app_grant_scope_and_time(issued: Issued) -> None:
    principal = await consent.resolve_bearer(issued.access_token)
    assert principal is not None and not principal.is_personal
    decision = await consent.authorize_read(
        principal=principal, scope="score:reach", resource="score:reach"
    )
    assert decision.allowed and bool(decision)
    entry = await AccessLogEntry.get()
    assert entry.grant_id == issued.grant.id
    assert entry.app_id == issued.reg.app.id
    assert entry.app_name == issued.reg.app.name
    assert (entry.scope, entry.resource) == ("score:reach", "score:reach")


async def test_read_outside_the_grant_is_refused_and_not_logged(issued: Issued) -> None:
    principal = await consent.resolve_bearer(issued.access_token)
    assert principal is not None
    for scope in ("score:cadence", "score:reach:history", "member:manage"):
        decision = await consent.authorize_read(principal=principal, scope=scope, resource=scope)
        assert not decision.allowed
    assert await AccessLogEntry.all().count() == 0


async def test_principal_carries_the_pairwise_subject_not_the_member_id(issued: Issued) -> None:
    principal = await consent.resolve_bearer(issued.access_token)
    assert principal is not None
    assert principal.subject == issued.grant.subject
    assert principal.subject != str(principal.member_id)


@pytest.mark.parametrize(
    "token", ["", "garbage", "coop_at_" + "A" * 43, "coop_pat_" + "A" * 43, "x" * 5000]
)
async def test_unknown_tokens_resolve_to_nobody(db: str, token: str) -> None:
    assert await consent.resolve_bearer(token) is None


async def test_refresh_token_is_not_a_bearer_token(issued: Issued) -> None:
    assert await consent.resolve_bearer(issued.refresh_token) is None


async def test_expired_access_token_resolves_to_nobody(issued: Issued) -> None:
    clock.advance(3601)
    assert await consent.resolve_bearer(issued.access_token) is None


async def test_concurrent_reads_share_commits_and_all_are_durable(issued: Issued) -> None:
    principal = await consent.resolve_bearer(issued.access_token)
    assert principal is not None
    writer = accesslog.writer()
    before = writer.flushes
    reads = 200
    decisions = await asyncio.gather(
        *(
            consent.authorize_read(principal=principal, scope="profile", resource=f"r{i}")
            for i in range(reads)
        )
    )
    assert all(d.allowed for d in decisions)
    assert await AccessLogEntry.all().count() == reads
    assert writer.flushes - before < reads / 10


async def test_read_inside_a_transaction_is_logged_with_it(issued: Issued) -> None:
    from tortoise.transactions import in_transaction

    principal = await consent.resolve_bearer(issued.access_token)
    assert principal is not None
    async with in_transaction():
        await consent.authorize_read(principal=principal, scope="profile", resource="profile")
    assert await AccessLogEntry.all().count() == 1


async def test_access_log_lists_newest_first_filtered_and_paginated(
    issued: Issued, member: Member
) -> None:
    principal = await consent.resolve_bearer(issued.access_token)
    assert principal is not None
    for i in range(5):
        clock.advance(1)
        await consent.authorize_read(principal=principal, scope="profile", resource=f"r{i}")
    page = await consent.list_entries(member_id=member.id, page=1, per_page=2)
    assert [e.resource for e in page.entries] == ["r4", "r3"] and page.has_next
    last = await consent.list_entries(member_id=member.id, page=3, per_page=2)
    assert [e.resource for e in last.entries] == ["r0"] and not last.has_next
    other = await consent.list_entries(member_id=member.id, app_id=issued.grant.id)
    assert other.entries == []
    assert await consent.list_log_apps(member_id=member.id) == [
        (issued.reg.app.id, issued.reg.app.name)
    ]
    last_access = await consent.last_access(member_id=member.id)
    assert set(last_access) == {issued.grant.id}
