"""A member's connections and their health, without their sealed config: one raw statement
on the read path (`db.read`), for the API's `viewer.connections`.

The same rows, in the same order, as `service.list_connections`
(tests/connectors/test_connection_health.py holds them equal on both engines), minus the
label, which needs the member's key (`Vault.cipher_for`: a query and an unwrap) and which
the API does not show.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from coop import db
from coop.connectors.registry import Registry

_CONNECTIONS = """
SELECT id, connector, status, status_reason, last_sync_at, next_sync_at, records_count
FROM connection
WHERE member_id = {1}
ORDER BY created_at"""


@dataclass(frozen=True)
class ConnectionHealth:
    id: uuid.UUID
    connector: str
    title: str  # the connector's title, or its name when it is not installed here
    status: str
    status_reason: str
    last_sync_at: datetime | None
    next_sync_at: datetime | None
    records_count: int


async def list_health(*, registry: Registry, member_id: uuid.UUID) -> list[ConnectionHealth]:
    found = []
    for row in await db.read(_CONNECTIONS, member_id):
        name = str(row["connector"])
        connector = registry.find(name)
        found.append(
            ConnectionHealth(
                id=db.as_uuid(row["id"]),
                connector=name,
                title=connector.title if connector else name,
                status=str(row["status"]),
                status_reason=str(row["status_reason"]),
                last_sync_at=db.as_time(row["last_sync_at"]),
                next_sync_at=db.as_time(row["next_sync_at"]),
                records_count=int(row["records_count"]),
            )
        )
    return found
