"""The API's hot read path: an app's access token, its grant, the app's name and the member's
current scores in ONE database round trip.

A flow (it reads consent, apps and scoring tables together) written as one raw statement
because the ORM's query building costs more than the query itself on this path (see
docs/benchmarks.md). On SQLite the statement runs on a separate read-only connection, on the
event loop's thread: tortoise funnels every query through one connection behind a lock, so a
read would otherwise queue behind the access log's group-commit transaction, while WAL lets a
second connection read committed data at any time in microseconds.

It makes the same decision as `consent.service.resolve_bearer` for app access tokens:
unknown, revoked or expired tokens and grants that are not active or have expired give None,
and a test holds the two to the same answers. Nothing is cached.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise import connections

# Latest score per scorer: the score row whose computed_at is the member's newest for that
# scorer (index score(member_id, scorer, computed_at)).
_SQL = """
SELECT t.scopes, t.access_expires_at, t.revoked_at, t.client_id,
       g.id AS grant_id, g.member_id, g.subject, g.status, g.expires_at, g.app_id,
       a.name AS app_name,
       s.id AS score_id, s.scorer, s.scorer_version, s.value, s.computed_at
FROM oauth_token t
JOIN consent_grant g ON g.id = t.grant_id
JOIN app a ON a.id = g.app_id
LEFT JOIN score s ON s.member_id = g.member_id AND s.computed_at = (
    SELECT MAX(s2.computed_at) FROM score s2
    WHERE s2.member_id = g.member_id AND s2.scorer = s.scorer
)
WHERE t.access_hash = {p}
"""
_SQL_SQLITE = _SQL.format(p="?")
_SQL_POSTGRES = _SQL.format(p="$1")


@dataclass(frozen=True)
class ScoreRow:
    id: uuid.UUID
    scorer: str
    scorer_version: str
    value: float
    computed_at: datetime


@dataclass(frozen=True)
class AppTokenRead:
    """A live app access token with the member's current scores (every scorer, unfiltered:
    the caller keeps only what the token's scopes allow)."""

    member_id: uuid.UUID
    grant_id: uuid.UUID
    app_id: uuid.UUID
    client_id: str
    app_name: str
    subject: str
    scopes: frozenset[str]
    expires_at: datetime
    scores: dict[str, ScoreRow]


_readers: dict[str, sqlite3.Connection] = {}


def _sqlite_reader(filename: str) -> sqlite3.Connection:
    """A read-only autocommit connection to the database file (one per file and process)."""
    reader = _readers.get(filename)
    if reader is None:
        reader = sqlite3.connect(
            f"file:{filename}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
        )
        reader.row_factory = sqlite3.Row
        reader.execute("PRAGMA query_only = ON")
        _readers[filename] = reader
    return reader


def close_readers() -> None:
    for reader in _readers.values():
        reader.close()
    _readers.clear()


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _scopes(value: Any) -> frozenset[str]:
    data = json.loads(value) if isinstance(value, (str, bytes)) else value
    return frozenset(str(s) for s in data or ())


async def read_app_token(*, access_hash: str, now: datetime) -> AppTokenRead | None:
    """The live token for `access_hash` with its member's current scores, else None."""
    conn = connections.get("default")
    if (
        conn.capabilities.dialect == "sqlite"
        and getattr(conn, "filename", ":memory:") != ":memory:"
    ):
        rows = _sqlite_reader(conn.filename).execute(_SQL_SQLITE, (access_hash,)).fetchall()
    else:
        rows = await conn.execute_query_dict(_SQL_POSTGRES, [access_hash])
    if not rows:
        return None
    first = rows[0]
    expires = _time(first["access_expires_at"])
    grant_ends = _time(first["expires_at"])
    if first["revoked_at"] is not None or expires is None or expires <= now:
        return None
    if first["status"] != "active" or (grant_ends is not None and grant_ends <= now):
        return None
    scores: dict[str, ScoreRow] = {}
    for row in rows:
        if row["score_id"] is not None and row["scorer"] not in scores:
            scores[row["scorer"]] = ScoreRow(
                id=_uuid(row["score_id"]),
                scorer=row["scorer"],
                scorer_version=row["scorer_version"],
                value=float(row["value"]),
                computed_at=_time(row["computed_at"]),  # type: ignore[arg-type]
            )
    return AppTokenRead(
        member_id=_uuid(first["member_id"]),
        grant_id=_uuid(first["grant_id"]),
        app_id=_uuid(first["app_id"]),
        client_id=str(first["client_id"]),
        app_name=str(first["app_name"]),
        subject=str(first["subject"]),
        scopes=_scopes(first["scopes"]),
        expires_at=expires,
        scores=scores,
    )
