"""Who a bearer token speaks for: THE decision (`resolve_bearer`), made in one statement.

One raw statement reads the token, its grant, the grant's app and the member's current
scores (the API's hot path needs all of them and the ORM's query building costs more than
the query, see docs/benchmarks.md); the decision itself is plain Python on its columns:

- a token that is unknown, too long or of another kind (a refresh token, a session id);
- a revoked or expired token;
- a grant that does not let its app read now: `grants.reads_allowed` (status, expiry, the
  app's changed terms) is the one place a grant state is decided;
- an erased member or a deleted app: their tokens and grants are gone with them (the
  erasure purges them in the transaction that destroys the key; app rows cascade).

Tokens are looked up by their SHA-256 (stored hashed; no secret is compared in Python).
Nothing is cached: a revocation, a pause or an erasure refuses the very next request.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from coop import db
from coop.types import utcnow

from .grants import reads_allowed
from .personal import PAT_PREFIX
from .tokens import ACCESS_PREFIX, token_hash

MAX_TOKEN_LENGTH = 200


@dataclass(frozen=True)
class CurrentScore:
    """A member's current score of one scorer, as an app or the member reads it: the row,
    and, once the API has levelled it to the grant (`consent.disclosure`), the scorer's
    range and band edges and the grant's `atleast` threshold."""

    id: uuid.UUID
    scorer: str
    scorer_version: str
    value: float
    computed_at: datetime
    range: tuple[float, float] = (0.0, 0.0)
    bands: tuple[float, ...] = ()  # the scorer's band edges (coop.scoring.bands)
    threshold: float | None = None  # the grant's `atleast:N`, when that is its level


@dataclass(frozen=True)
class Principal:
    """Who a bearer token speaks for: a third-party app under a grant (`subject` is the
    pairwise id that app sees, never `member_id`), or the member with a personal token."""

    member_id: uuid.UUID
    scopes: frozenset[str]
    subject: str  # the member id as this caller sees it (pairwise per app, GQ-14)
    expires_at: datetime | None
    app_id: uuid.UUID | None = None  # None for a personal access token
    grant_id: uuid.UUID | None = None
    client_id: str | None = None
    app_name: str = ""
    token_id: uuid.UUID | None = None  # the personal access token's id
    # The member's current scores, every scorer (read with the token; not yet filtered by
    # scope: `authorize_read` decides each read).
    scores: Mapping[str, CurrentScore] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_personal(self) -> bool:
        return self.app_id is None

    @property
    def rate_key(self) -> str:
        """Rate limits are kept per (app, member): one app cannot starve another (GQ-12)."""
        return f"{self.app_id or 'personal'}:{self.member_id}"


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
_statements: dict[tuple[str, str], str] = {}


async def _token_rows(template: str, digest: str) -> list[db.Row]:
    """The rows of a token statement (`{p}`: its one parameter) for the token's hash."""
    marker = db.placeholder(1)
    sql = _statements.get((template, marker))
    if sql is None:
        sql = _statements[(template, marker)] = template.format(p=marker)
    return await db.read_rows(sql, [digest])


async def resolve_bearer(token: str) -> Principal | None:
    """The principal behind an app's access token or a personal access token, with the
    member's current scores; None when the token may not read now (see the module)."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    if token.startswith(ACCESS_PREFIX):
        return _app_principal(await _token_rows(_APP_SQL, token_hash(token)), utcnow())
    if token.startswith(PAT_PREFIX):
        return _personal_principal(await _token_rows(_PAT_SQL, token_hash(token)), utcnow())
    return None


def _app_principal(rows: Sequence[db.Row], now: datetime) -> Principal | None:
    if not rows:
        return None
    first = rows[0]
    expires = _time(first["access_expires_at"])
    if first["revoked_at"] is not None or expires is None or expires <= now:
        return None
    if not reads_allowed(
        status=first["status"],
        expires_at=_time(first["expires_at"]),
        agreed_terms=int(first["agreed_terms"]),
        current_terms=int(first["current_terms"]),
        now=now,
    ):
        return None
    return Principal(
        member_id=_uuid(first["member_id"]),
        scopes=_scopes(first["scopes"]),
        subject=str(first["subject"]),
        expires_at=expires,
        app_id=_uuid(first["app_id"]),
        grant_id=_uuid(first["grant_id"]),
        client_id=str(first["client_id"]),
        app_name=str(first["app_name"]),
        scores=_scores(rows),
    )


def _personal_principal(rows: Sequence[db.Row], now: datetime) -> Principal | None:
    if not rows:
        return None
    first = rows[0]
    expires = _time(first["expires_at"])
    if first["revoked_at"] is not None or (expires is not None and expires <= now):
        return None
    member_id = _uuid(first["member_id"])
    return Principal(
        member_id=member_id,
        scopes=_scopes(first["scopes"]),
        subject=str(member_id),
        expires_at=expires,
        token_id=_uuid(first["token_id"]),
        scores=_scores(rows),
    )


def _uuid(value: object) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _time(value: object) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _scopes(value: object) -> frozenset[str]:
    data = json.loads(value) if isinstance(value, str | bytes) else value
    return frozenset(str(s) for s in data) if isinstance(data, list) else frozenset()


def _scores(rows: Sequence[db.Row]) -> dict[str, CurrentScore]:
    scores: dict[str, CurrentScore] = {}
    for row in rows:
        computed_at = _time(row["computed_at"])
        if row["score_id"] is not None and computed_at and row["scorer"] not in scores:
            scores[row["scorer"]] = CurrentScore(
                id=_uuid(row["score_id"]),
                scorer=row["scorer"],
                scorer_version=row["scorer_version"],
                value=float(row["value"]),
                computed_at=computed_at,
            )
    return scores
