"""The API's hot read path: a token (an app's, with its grant and the app's name, or a
personal one) and the member's current scores in ONE database round trip.

A flow (it reads consent, apps and scoring tables together) written as one raw statement
because the ORM's query building costs more than the query itself on this path (see
docs/benchmarks.md). On SQLite the statement runs on a separate read-only connection, on the
event loop's thread: tortoise funnels every query through one connection behind a lock, so a
read would otherwise queue behind the access log's group-commit transaction, while WAL lets a
second connection read committed data at any time in microseconds.

It makes the same decision as `consent.service.resolve_bearer` for app access tokens:
unknown, revoked or expired tokens give None, and whether the grant lets the app read is
`consent.grants.reads_allowed` itself (not active, expired, or waiting for the member to agree
to the app's changed terms: None). A test holds the two to the same answers. Nothing is cached.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.connection import get_connection

from coop.consent.grants import reads_allowed

# The latest score per scorer is the row whose computed_at is the member's newest for that
# scorer (index score(member_id, scorer, computed_at)); of rows tied on computed_at the one
# with the greatest id, as in scoring.service.NEWEST_FIRST (the statements end with ORDER BY
# s.id DESC and `_scores` keeps each scorer's first row).
_LATEST = """
LEFT JOIN score s ON s.member_id = {member} AND s.computed_at = (
    SELECT MAX(s2.computed_at) FROM score s2
    WHERE s2.member_id = {member} AND s2.scorer = s.scorer
)"""
_APP_SQL = (
    """
SELECT t.scopes, t.access_expires_at, t.revoked_at, t.client_id,
       g.id AS grant_id, g.member_id, g.subject, g.status, g.expires_at, g.app_id,
       g.terms_version AS agreed_terms, a.name AS app_name, a.terms_version AS current_terms,
       s.id AS score_id, s.scorer, s.scorer_version, s.value, s.computed_at
FROM oauth_token t
JOIN consent_grant g ON g.id = t.grant_id
JOIN app a ON a.id = g.app_id"""
    + _LATEST.format(member="g.member_id")
    + "\nWHERE t.access_hash = {p}\nORDER BY s.id DESC"
)
_PAT_SQL = (
    """
SELECT t.id AS token_id, t.member_id, t.scopes, t.expires_at, t.revoked_at,
       s.id AS score_id, s.scorer, s.scorer_version, s.value, s.computed_at
FROM personal_token t"""
    + _LATEST.format(member="t.member_id")
    + "\nWHERE t.token_hash = {p}\nORDER BY s.id DESC"
)
_EXPLAIN_SQL = "SELECT id, explanation_sealed FROM score WHERE member_id = {m} AND id IN ({ids})"


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


@dataclass(frozen=True)
class PersonalTokenRead:
    """A live personal access token with its member's current scores."""

    token_id: uuid.UUID
    member_id: uuid.UUID
    scopes: frozenset[str]
    expires_at: datetime | None
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


_dialect_cache: dict[tuple[str, str], str] = {}


async def _token_rows(template: str, token_hash: str) -> list[Any]:
    """Rows of a token statement (`{p}`: its one placeholder) for `token_hash`."""
    conn = get_connection("default")
    dialect = conn.capabilities.dialect
    sql = _dialect_cache.get((template, dialect))
    if sql is None:
        sql = template.format(p="$1" if dialect == "postgres" else "?")
        _dialect_cache[(template, dialect)] = sql
    return await _rows(sql, [token_hash], conn)


async def _rows(sql: str, params: list[Any], conn: Any = None) -> list[Any]:
    """Rows of `sql` (SQLite: the read-only connection; PostgreSQL: the pool)."""
    if conn is None:
        conn = get_connection("default")
    filename = getattr(conn, "filename", ":memory:")
    if conn.capabilities.dialect == "sqlite" and filename != ":memory:":
        return _sqlite_reader(filename).execute(sql, params).fetchall()
    return list(await conn.execute_query_dict(sql, params))


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _scopes(value: Any) -> frozenset[str]:
    data = json.loads(value) if isinstance(value, (str, bytes)) else value
    return frozenset(str(s) for s in data or ())


def _scores(rows: list[Any]) -> dict[str, ScoreRow]:
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
    return scores


async def read_app_token(*, access_hash: str, now: datetime) -> AppTokenRead | None:
    """The live token for `access_hash` with its member's current scores, else None."""
    rows = await _token_rows(_APP_SQL, access_hash)
    if not rows:
        return None
    first = rows[0]
    expires = _time(first["access_expires_at"])
    grant_ends = _time(first["expires_at"])
    if first["revoked_at"] is not None or expires is None or expires <= now:
        return None
    if not reads_allowed(
        status=first["status"],
        expires_at=grant_ends,
        agreed_terms=int(first["agreed_terms"]),
        current_terms=int(first["current_terms"]),
        now=now,
    ):
        return None
    return AppTokenRead(
        member_id=_uuid(first["member_id"]),
        grant_id=_uuid(first["grant_id"]),
        app_id=_uuid(first["app_id"]),
        client_id=str(first["client_id"]),
        app_name=str(first["app_name"]),
        subject=str(first["subject"]),
        scopes=_scopes(first["scopes"]),
        expires_at=expires,
        scores=_scores(rows),
    )


async def read_personal_token(*, token_hash: str, now: datetime) -> PersonalTokenRead | None:
    """The live personal token for `token_hash` with its member's current scores, else None
    (the same rules as `consent.service.resolve_bearer`: revoked or expired give None)."""
    rows = await _token_rows(_PAT_SQL, token_hash)
    if not rows:
        return None
    first = rows[0]
    expires = _time(first["expires_at"])
    if first["revoked_at"] is not None or (expires is not None and expires <= now):
        return None
    return PersonalTokenRead(
        token_id=_uuid(first["token_id"]),
        member_id=_uuid(first["member_id"]),
        scopes=_scopes(first["scopes"]),
        expires_at=expires,
        scores=_scores(rows),
    )


async def read_sealed_explanations(
    *, member_id: uuid.UUID, score_ids: list[uuid.UUID]
) -> dict[uuid.UUID, bytes]:
    """The sealed explanations of several of the member's scores, in one query."""
    if not score_ids:
        return {}
    conn = get_connection("default")
    if conn.capabilities.dialect == "postgres":
        ids = ", ".join(f"${i + 2}" for i in range(len(score_ids)))
        sql = _EXPLAIN_SQL.format(m="$1", ids=ids)
        params: list[Any] = [member_id, *score_ids]
    else:
        sql = _EXPLAIN_SQL.format(m="?", ids=", ".join("?" for _ in score_ids))
        params = [str(member_id), *(str(i) for i in score_ids)]
    rows = await _rows(sql, params, conn)
    return {_uuid(row["id"]): bytes(row["explanation_sealed"]) for row in rows}
