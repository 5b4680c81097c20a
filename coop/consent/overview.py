"""What members read about their own consent (the API's self-service fields), one raw
statement each on the read path (`db.read`): their grants with each app's name and last
read, whether all sharing is paused, a page of their access log.

The same rows as `grants.list_grants` + `accesslog.last_access`, `grants.is_sharing_paused`
and `accesslog.list_entries` (tests/consent/test_overview.py holds them equal on both
engines), without the ORM's query building, which cost more than the queries
(docs/benchmarks.md). They read committed data only: never call them inside a transaction
that wrote what they should see.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from coop import db

# Newest first, as `list_grants`; a grant's last read is its newest access-log row, found
# through the (grant_id, at) index as `accesslog.last_access` finds it.
_GRANTS = """
SELECT g.id, a.name AS app_name, g.scopes, g.status, g.created_at, g.expires_at, g.held,
       (SELECT l.at FROM access_log l WHERE l.grant_id = g.id
        ORDER BY l.at DESC LIMIT 1) AS last_access_at
FROM consent_grant g
JOIN app a ON a.id = g.app_id
WHERE g.member_id = {1}
ORDER BY g.created_at DESC"""
_PAUSED = "SELECT 1 FROM sharing_pause WHERE member_id = {1}"
_LOG = """
SELECT app_name, scope, resource, at FROM access_log
WHERE member_id = {1}
ORDER BY at DESC, id DESC
LIMIT {2} OFFSET {3}"""


@dataclass(frozen=True)
class GrantSummary:
    """One of the member's grants as they see it on their own (any status)."""

    id: uuid.UUID
    app_name: str
    scopes: Sequence[str]
    status: str
    created_at: datetime
    expires_at: datetime | None
    last_access_at: datetime | None
    held: bool


@dataclass(frozen=True)
class LogLine:
    """One access-log row as the member reads it."""

    app_name: str
    scope: str
    resource: str
    at: datetime


async def grant_summaries(*, member_id: uuid.UUID) -> list[GrantSummary]:
    """Every grant of the member, newest first, with its app's name and its last read."""
    rows = await db.read(_GRANTS, member_id)
    return [
        GrantSummary(
            id=db.as_uuid(row["id"]),
            app_name=str(row["app_name"]),
            scopes=db.as_strings(row["scopes"]),
            status=str(row["status"]),
            created_at=_time(row["created_at"]),
            expires_at=db.as_time(row["expires_at"]),
            last_access_at=db.as_time(row["last_access_at"]),
            held=bool(row["held"]),
        )
        for row in rows
    ]


async def sharing_paused(*, member_id: uuid.UUID) -> bool:
    return bool(await db.read(_PAUSED, member_id))


async def log_lines(*, member_id: uuid.UUID, offset: int, limit: int) -> list[LogLine]:
    """`limit` rows of the member's access log from `offset`, newest first."""
    rows = await db.read(_LOG, member_id, limit, offset)
    return [
        LogLine(
            app_name=str(row["app_name"]),
            scope=str(row["scope"]),
            resource=str(row["resource"]),
            at=_time(row["at"]),
        )
        for row in rows
    ]


def _time(value: object) -> datetime:
    found = db.as_time(value)
    assert found is not None, "a NOT NULL timestamp column"
    return found
