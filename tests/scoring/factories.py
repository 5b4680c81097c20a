"""Factories for scoring tests: members and stored connector records (sealed like a sync)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from coop.connectors import spec, store
from coop.connectors.models import Connection, Record
from coop.members.models import Member
from coop.types import utcnow
from coop.vault import Vault


async def make_member(vault: Vault) -> uuid.UUID:
    member_id = uuid.uuid4()
    now = utcnow()
    await Member.create(
        id=member_id,
        email_index=uuid.uuid4().hex,
        email_sealed=b"-",
        handle_sealed=b"-",
        password_hash="-",
        created_at=now,
        password_changed_at=now,
    )
    await vault.create_key(member_id)
    return member_id


async def add_records(
    vault: Vault, member_id: uuid.UUID, records: list[spec.Record]
) -> list[uuid.UUID]:
    """Store records for the member under one (feed) connection; returns their row ids."""
    cipher = await vault.cipher_for(member_id)
    connection = await Connection.get_or_none(member_id=member_id)
    if connection is None:
        cid = uuid.uuid4()
        connection = await Connection.create(
            id=cid,
            member_id=member_id,
            connector="feed",
            config_sealed=store.seal_field(cipher, cid, "config_sealed", {}),
            created_at=utcnow(),
        )
    ids = []
    for record in records:
        key = store.record_key(vault, connection.id, record.external_id)
        row_id = store.record_id(connection.id, key)
        await Record.create(
            id=row_id,
            member_id=member_id,
            connection_id=connection.id,
            kind=record.kind,
            external_key=key,
            occurred_at=record.occurred_at,
            body_sealed=store.seal_body(cipher, row_id, record),
            updated_at=utcnow(),
        )
        ids.append(row_id)
    return ids


def posts(now: datetime, n: int, *, every_days: float = 2.0, start: int = 0) -> list[spec.Record]:
    return [
        spec.Record(
            kind="post",
            external_id=f"post-{start + i}",
            occurred_at=now - timedelta(days=every_days * i + 0.5),
            counts={"favourites": 3 + i % 5, "reblogs": i % 3, "replies": 1},
            text=f"private words of post {start + i}",
        )
        for i in range(n)
    ]
