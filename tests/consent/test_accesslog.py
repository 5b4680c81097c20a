"""The access log's natural group commit: a read is answered only after its row is
committed, reads that arrive together or during a flush share commits, and a failed write
fails the reads waiting on it (never a read served unlogged, never a row dropped silently)."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from datetime import datetime, timedelta

import asyncpg
import pytest
from tortoise import connections
from tortoise.exceptions import IntegrityError

from coop.consent import accesslog
from coop.consent import service as consent
from coop.consent.models import AccessLogEntry, Grant
from coop.members.models import Member
from coop.types import utcnow
from coop.vault import Vault
from tests.consent.conftest import Issued, issue
from tests.oauth.support import make_member, register


async def _count_elsewhere(database_url: str) -> int:
    """Rows in access_log as another connection sees them: only committed rows."""
    if database_url.startswith("sqlite://"):
        other = sqlite3.connect(database_url.removeprefix("sqlite://"))
        try:
            count: int = other.execute("SELECT COUNT(*) FROM access_log").fetchone()[0]
        finally:
            other.close()
        return count
    pg = await asyncpg.connect(database_url.replace("postgres://", "postgresql://", 1))
    try:
        value: int = await pg.fetchval("SELECT COUNT(*) FROM access_log")
    finally:
        await pg.close()
    return value


async def _rename(old: str, new: str) -> None:
    await connections.get("default").execute_script(f"ALTER TABLE {old} RENAME TO {new}")


async def test_read_is_answered_only_after_its_entry_is_committed(issued: Issued, db: str) -> None:
    principal = await consent.resolve_bearer(issued.access_token)
    assert principal is not None
    for expected in (1, 2, 3):
        await consent.authorize_read(principal=principal, scope="profile", resource="profile")
        assert await _count_elsewhere(db) == expected


async def test_entries_written_in_one_statement_read_back_exactly(member: Member) -> None:
    at = utcnow()
    app_id, token_id = uuid.uuid4(), uuid.uuid4()
    await asyncio.gather(
        accesslog.record(
            member_id=member.id, scope="score:reach", resource="score:reach", app_name="A", at=at
        ),
        accesslog.record(
            member_id=member.id,
            scope="profile",
            resource="profile",
            app_name="you",
            personal_token_id=token_id,
            app_id=app_id,
            at=at,
        ),
    )
    rows = {e.scope: e for e in await AccessLogEntry.filter(member_id=member.id)}
    assert rows["score:reach"].at == at and rows["profile"].at == at
    assert rows["profile"].personal_token_id == token_id and rows["profile"].app_id == app_id
    assert rows["score:reach"].grant_id is None and rows["score:reach"].app_name == "A"


async def test_many_concurrent_reads_share_one_commit(issued: Issued, db: str) -> None:
    principal = await consent.resolve_bearer(issued.access_token)
    assert principal is not None
    writer = accesslog.writer()
    before = writer.flushes
    await asyncio.gather(
        *(
            consent.authorize_read(principal=principal, scope="profile", resource=f"r{i}")
            for i in range(300)
        )
    )
    assert writer.flushes - before == 1
    assert await _count_elsewhere(db) == 300


async def test_a_lone_read_flushes_at_once_and_later_reads_join_the_next_flush(
    member: Member, db: str
) -> None:
    writer = accesslog.writer()
    before = writer.flushes

    def read(i: int) -> asyncio.Task[None]:
        return asyncio.create_task(
            accesslog.record(member_id=member.id, scope="profile", resource=f"r{i}", app_name="A")
        )

    first = read(0)
    await asyncio.sleep(0)  # the first read queues its row and starts a flush of that row
    later = [read(i) for i in range(1, 51)]  # these arrive while that flush is running
    await asyncio.gather(first, *later)
    assert writer.flushes - before == 2
    assert await _count_elsewhere(db) == 51


async def test_a_failed_flush_fails_every_waiting_read_and_the_log_recovers(
    issued: Issued, db: str
) -> None:
    principal = await consent.resolve_bearer(issued.access_token)
    assert principal is not None
    await _rename("access_log", "access_log_away")
    try:
        outcomes = await asyncio.gather(
            *(
                consent.authorize_read(principal=principal, scope="profile", resource=f"r{i}")
                for i in range(20)
            ),
            return_exceptions=True,
        )
    finally:
        await _rename("access_log_away", "access_log")
    assert all(isinstance(o, Exception) for o in outcomes)
    assert await _count_elsewhere(db) == 0
    decision = await consent.authorize_read(principal=principal, scope="profile", resource="ok")
    assert decision.allowed
    assert await _count_elsewhere(db) == 1


async def test_one_unwritable_entry_fails_only_its_own_read(member: Member, db: str) -> None:
    gone = uuid.uuid4()  # say, a member erased while one of their reads was in flight

    async def read(member_id: uuid.UUID, resource: str) -> None:
        await accesslog.record(
            member_id=member_id, scope="profile", resource=resource, app_name="A"
        )

    outcomes = await asyncio.gather(
        *(read(member.id, f"r{i}") for i in range(5)),
        read(gone, "lost"),
        *(read(member.id, f"s{i}") for i in range(5)),
        return_exceptions=True,
    )
    assert [isinstance(o, IntegrityError) for o in outcomes] == [False] * 5 + [True] + [False] * 5
    assert await _count_elsewhere(db) == 10
    assert not await AccessLogEntry.filter(resource="lost").exists()


@pytest.mark.parametrize("reads", [1, 501])
async def test_batches_above_the_statement_limit_are_split(
    member: Member, db: str, reads: int
) -> None:
    await asyncio.gather(
        *(
            accesslog.record(member_id=member.id, scope="profile", resource=f"r{i}", app_name="A")
            for i in range(reads)
        )
    )
    assert await _count_elsewhere(db) == reads


async def test_last_access_is_each_grants_newest_read_and_only_the_members(
    member: Member, issued: Issued, vault: Vault
) -> None:
    unread = await issue(member.id, await register(vault))
    other = await make_member(vault)
    elsewhere = await issue(other.id, await register(vault))
    now = utcnow()
    newest = now - timedelta(minutes=1)

    def row(owner: uuid.UUID, grant: Grant | None, at: datetime) -> accesslog.Row:
        app_id = None if grant is None else grant.app_id  # type: ignore[attr-defined]
        return (
            uuid.uuid4(),
            owner,
            None if grant is None else grant.id,
            app_id,
            "App",
            None,
            "score:reach",
            "score:reach",
            at,
        )

    rows = [
        row(member.id, issued.grant, now - timedelta(days=3)),
        row(member.id, issued.grant, newest),
        row(member.id, issued.grant, now - timedelta(hours=2)),
        row(member.id, None, now),  # a personal token's read: no grant
        row(other.id, elsewhere.grant, now),
    ]
    await accesslog.insert_rows(connections.get("default"), rows)
    last = await consent.last_access(member_id=member.id)
    assert set(last) == {issued.grant.id}
    assert last[issued.grant.id] == newest
    assert unread.grant.id not in last
    assert await consent.last_access(member_id=other.id) == {elsewhere.grant.id: now}
