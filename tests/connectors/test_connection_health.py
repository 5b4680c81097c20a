"""A member's connections read in one raw statement (coop.connectors.health) say what the
ORM listing says, in its order, whatever their state, without opening their config."""

from __future__ import annotations

import uuid
from datetime import timedelta

from coop.connectors import health, service
from coop.connectors.models import Connection
from coop.connectors.registry import Registry
from coop.types import clock, utcnow
from coop.vault import Vault
from tests.connectors.helpers import make_member
from tests.connectors.test_service import RevocableConnector


async def _orm(
    vault: Vault, registry: Registry, member: uuid.UUID
) -> list[health.ConnectionHealth]:
    return [
        health.ConnectionHealth(
            id=v.id,
            connector=v.connector,
            title=v.title,
            status=v.status,
            status_reason=v.status_reason,
            last_sync_at=v.last_sync_at,
            next_sync_at=v.next_sync_at,
            records_count=v.records_count,
        )
        for v in await service.list_connections(vault=vault, registry=registry, member_id=member)
    ]


async def test_health_reads_what_the_orm_reads_in_every_state(vault: Vault, db: str) -> None:
    registry = Registry({"revocable": RevocableConnector("https://revoke.example")})
    member, other = await make_member(vault), await make_member(vault)
    assert await health.list_health(registry=registry, member_id=member) == []
    made = []
    for i, whose in enumerate([member, other, member, member]):
        view = await service.create_connection(
            vault=vault,
            registry=registry,
            member_id=whose,
            connector="revocable",
            config={"instance": f"https://social-{i}.example"},
        )
        made.append(view.id)
        clock.advance(1)  # created one after the other: listed oldest first
    whole = utcnow().replace(microsecond=0)
    await Connection.filter(id=made[0]).update(
        status="failing",
        status_reason="The server answered 404.",
        last_sync_at=whole,
        next_sync_at=whole + timedelta(hours=1, microseconds=7),
        records_count=42,
    )
    await Connection.filter(id=made[2]).update(status="syncing")
    await Connection.filter(id=made[3]).update(connector="uninstalled")  # titled by its name
    found = await health.list_health(registry=registry, member_id=member)
    assert found == await _orm(vault, registry, member)
    assert [c.id for c in found] == [made[0], made[2], made[3]]
    assert [(c.status, c.title, c.records_count) for c in found] == [
        ("failing", "Revocable", 42),
        ("syncing", "Revocable", 0),
        ("ok", "uninstalled", 0),
    ]
    assert found[0].last_sync_at == whole
