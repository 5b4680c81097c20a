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

On PostgreSQL with the API rate limit on, the same statement also charges the caller's
shared bucket (`coop.consent.ratelimit`, in a data-modifying CTE): the limit costs the read
no round trip of its own. The decision stays here, in Python, after the statement: a token
it refuses gets its charge back (one more statement, on the refusal path only).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from coop import db
from coop.types import utcnow

from . import ratelimit
from .grants import reads_allowed
from .personal import PAT_PREFIX
from .ratelimit import Decision
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
    # The rate-limit answer, when the bearer statement charged the shared bucket (PostgreSQL).
    rate: Decision | None = field(default=None, compare=False, repr=False)

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


@dataclass(frozen=True)
class _Statement:
    """How to read one kind of token: its columns, tables and condition on `{p}` (the
    token's hash), its member's id, and its rate key in SQL (`Principal.rate_key`, spelt
    over the CTE `tok`)."""

    columns: str
    tables: str
    where: str
    member: str
    rate_key: str

    def plain(self) -> str:
        return (
            f"SELECT {self.columns},\n       {_SCORE_COLUMNS}\nFROM {self.tables}"
            + _LATEST.format(member=self.member)
            + f"\nWHERE {self.where}\nORDER BY s.id DESC"
        )

    def charged(self) -> str:
        """PostgreSQL: the same rows, and the client's rate-limit bucket charged in the same
        statement (`rate_key`, `rate_tokens`, `rate_allowed`; NULL when not charged: a
        revoked token, which `resolve_bearer` refuses in any case, costs no write)."""
        charge = ratelimit.charge_sql(key=self.rate_key, source="tok WHERE tok.revoked_at IS NULL")
        return (
            f"WITH tok AS (\nSELECT {self.columns}\nFROM {self.tables}\nWHERE {self.where}\n),\n"
            f"hit AS ({charge})\n"
            "SELECT tok.*, hit.key AS rate_key, hit.tokens AS rate_tokens, "
            f"hit.allowed AS rate_allowed,\n       {_SCORE_COLUMNS}\nFROM tok LEFT JOIN hit ON true"
            + _LATEST.format(member="tok.member_id")
            + "\nORDER BY s.id DESC"
        )


_SCORE_COLUMNS = "s.id AS score_id, s.scorer, s.scorer_version, s.value, s.computed_at"
_APP = _Statement(
    columns="""t.scopes, t.access_expires_at, t.revoked_at, t.client_id,
       g.id AS grant_id, g.member_id, g.subject, g.status, g.expires_at, g.app_id,
       g.terms_version AS agreed_terms, a.name AS app_name, a.terms_version AS current_terms""",
    tables="""oauth_token t
JOIN consent_grant g ON g.id = t.grant_id
JOIN app a ON a.id = g.app_id""",
    where="t.access_hash = {p}",
    member="g.member_id",
    rate_key="tok.app_id::text || ':' || tok.member_id::text",
)
_PAT = _Statement(
    columns="t.id AS token_id, t.member_id, t.scopes, t.expires_at, t.revoked_at",
    tables="personal_token t",
    where="t.token_hash = {p}",
    member="t.member_id",
    rate_key="'personal:' || tok.member_id::text",
)
_statements: dict[tuple[_Statement, str], str] = {}


def _sql(statement: _Statement, marker: str) -> str:
    """The statement's text for this dialect's parameter marker (`$1`: PostgreSQL)."""
    sql = _statements.get((statement, marker))
    if sql is None:
        sql = _statements[(statement, marker)] = statement.plain().format(p=marker)
    return sql


async def resolve_bearer(token: str, *, rate_limit: int = 0) -> Principal | None:
    """The principal behind an app's access token or a personal access token, with the
    member's current scores; None when the token may not read now (see the module).

    With `rate_limit` on PostgreSQL, the same statement also charges the principal's shared
    rate-limit bucket of that size (`coop.consent.ratelimit`): `Principal.rate` is the
    answer. A token refused here gets its token back (`ratelimit.refund`)."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    if token.startswith(ACCESS_PREFIX):
        statement, principal_of = _APP, _app_principal
    elif token.startswith(PAT_PREFIX):
        statement, principal_of = _PAT, _personal_principal
    else:
        return None
    if rate_limit > 0 and db.db_kind() == "postgres":
        return await _charged(statement, principal_of, token_hash(token), rate_limit)
    rows = await db.read_rows(_sql(statement, db.placeholder(1)), [token_hash(token)])
    return principal_of(rows, utcnow())


async def _charged(
    statement: _Statement,
    principal_of: Callable[[Sequence[db.Row], datetime], Principal | None],
    digest: str,
    limit: int,
) -> Principal | None:
    """`resolve_bearer` with the principal's bucket charged in the same statement."""
    sql = _charged_sql.get(statement)
    if sql is None:
        sql = _charged_sql[statement] = statement.charged().format(p="$1")
    rows = await ratelimit.charged_rows(sql, [digest, *ratelimit.charge_params(limit)])
    principal = principal_of(rows, utcnow())
    allowed = rows[0]["rate_allowed"] if rows else None
    if allowed is None:  # no such token, or a revoked one: nothing was charged
        return principal
    if principal is None:
        if allowed:  # a token this decision refuses (expired, paused grant...): not counted
            await ratelimit.refund(str(rows[0]["rate_key"]), limit)
        return None
    tokens = float(rows[0]["rate_tokens"])
    return replace(principal, rate=ratelimit.bucket_decision(limit, tokens, bool(allowed)))


_charged_sql: dict[_Statement, str] = {}


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
