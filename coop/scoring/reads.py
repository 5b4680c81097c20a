"""The API's reads of a member's scores beyond their values: one raw statement each.

Explanations, changes and staleness of current scores, and history pages. Each statement
reads the rows with the member's wrapped data key (`vault_member_key`, a LEFT JOIN: no key
row means the member's key is shredded, and opening fails with KeyMissingError as
`Vault.cipher_for` fails), through `coop.db.read_rows`: the ORM's query building costs more
than these queries, and on SQLite the read connection does not queue behind the access log's
writes (docs/benchmarks.md). The key is unwrapped per call and never kept: the first read
after an erasure finds no key. Only committed data is read; these are not for use inside a
transaction that wrote what they read.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from coop import db
from coop.scoring import changes
from coop.scoring.changes import Change
from coop.scoring.service import HISTORY_LIMIT, TABLE, Explanation, ScoreView, explanation_of
from coop.vault import MemberCipher, Vault

T = TypeVar("T")

# Each statement ends with the member's key columns (k.kek_id, k.wrapped) through
# "LEFT JOIN vault_member_key k ON k.member_id = s.member_id"; `{…}` are placeholders.
_EXPLANATIONS_SQL = (
    "SELECT s.id, s.explanation_sealed, k.kek_id, k.wrapped FROM score s "
    "LEFT JOIN vault_member_key k ON k.member_id = s.member_id "
    "WHERE s.member_id = {member} AND s.id IN ({ids})"
)
_STATES_SQL = (
    "SELECT s.id, s.change_sealed, c.stale_reason, k.kek_id, k.wrapped FROM score s "
    "LEFT JOIN vault_member_key k ON k.member_id = s.member_id "
    "LEFT JOIN scorer_consent c ON c.member_id = s.member_id AND c.scorer = s.scorer "
    "WHERE s.member_id = {member} AND s.id IN ({ids})"
)
# A scorer's scores exist only while it is enabled (disabling deletes them in the same
# transaction), but a score stored by a run that raced the disabling could outlive it: the
# join on the enabled consent keeps history to enabled scorers, as scoring.service does.
# The order is scoring.service.NEWEST_FIRST (computed_at, then id, both descending).
_HISTORY_SQL = (
    "SELECT s.id, s.scorer, s.scorer_version, s.value, s.inputs_digest, s.computed_at, "
    "s.change_sealed, {explanation} AS explanation_sealed, k.kek_id, k.wrapped FROM score s "
    "JOIN scorer_consent c ON c.member_id = s.member_id AND c.scorer = s.scorer AND c.enabled "
    "LEFT JOIN vault_member_key k ON k.member_id = s.member_id "
    "WHERE s.member_id = {member} AND s.scorer = {scorer} "
    "ORDER BY s.computed_at DESC, s.id DESC LIMIT {limit} OFFSET {offset}"
)


@dataclass(frozen=True)
class ScoreState:
    change: Change | None
    stale_reason: str


def _cipher(vault: Vault, member_id: uuid.UUID, row: db.Row) -> MemberCipher:
    return vault.open_key(member_id, row["kek_id"], row["wrapped"])


def _marks(postgres: bool, count: int) -> list[str]:
    """Parameter markers 1..count of the active dialect (one dialect look-up per read)."""
    return [f"${i}" for i in range(1, count + 1)] if postgres else ["?"] * count


def _param(postgres: bool, value: uuid.UUID) -> object:
    return value if postgres else str(value)


def _in(member_id: uuid.UUID, ids: Sequence[uuid.UUID], template: str) -> tuple[str, list[object]]:
    postgres = db.db_kind() == "postgres"
    member, *marks = _marks(postgres, len(ids) + 1)
    sql = template.format(member=member, ids=", ".join(marks))
    return sql, [_param(postgres, member_id), *(_param(postgres, i) for i in ids)]


def _change(cipher: MemberCipher, score_id: uuid.UUID, sealed: bytes | None) -> Change | None:
    if sealed is None:
        return None
    data = cipher.open_json(bytes(sealed), table=TABLE, column="change_sealed", row=score_id)
    return changes.from_json(data)


def _explanation(cipher: MemberCipher, score_id: uuid.UUID, sealed: bytes) -> Explanation:
    data = cipher.open_json(bytes(sealed), table=TABLE, column="explanation_sealed", row=score_id)
    return explanation_of(data)


async def read_explanations(
    *, vault: Vault, member_id: uuid.UUID, score_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Explanation]:
    """The explanations of several of the member's scores (absent: not the member's)."""

    def opened(cipher: MemberCipher, score_id: uuid.UUID, row: db.Row) -> Explanation:
        return _explanation(cipher, score_id, row["explanation_sealed"])

    return await _by_score(vault, member_id, score_ids, _EXPLANATIONS_SQL, opened)


async def current_states(
    *, vault: Vault, member_id: uuid.UUID, score_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, ScoreState]:
    """The change and staleness of some of the member's current scores (by score id)."""

    def opened(cipher: MemberCipher, score_id: uuid.UUID, row: db.Row) -> ScoreState:
        change = _change(cipher, score_id, row["change_sealed"])
        return ScoreState(change, str(row["stale_reason"] or ""))

    return await _by_score(vault, member_id, score_ids, _STATES_SQL, opened)


async def _by_score(
    vault: Vault,
    member_id: uuid.UUID,
    score_ids: Sequence[uuid.UUID],
    template: str,
    opened: Callable[[MemberCipher, uuid.UUID, db.Row], T],
) -> dict[uuid.UUID, T]:
    """One read of `template` for these of the member's scores, each row opened under the
    member's key (unwrapped once, from the first row)."""
    if not score_ids:
        return {}
    rows = await db.read_rows(*_in(member_id, score_ids, template))
    if not rows:
        return {}
    cipher = _cipher(vault, member_id, rows[0])
    found = {}
    for row in rows:
        score_id = db.as_uuid(row["id"])
        found[score_id] = opened(cipher, score_id, row)
    return found


async def read_history(
    *,
    vault: Vault,
    member_id: uuid.UUID,
    scorer: str,
    limit: int,
    offset: int = 0,
    explain: bool = False,
) -> list[ScoreView]:
    """`scoring.service.list_history` for an enabled scorer (none while it is not):
    at most `limit` (capped at HISTORY_LIMIT) scores newest first after skipping `offset`,
    their explanations opened only when `explain`."""
    postgres = db.db_kind() == "postgres"
    member, name, most, skip = _marks(postgres, 4)
    sql = _HISTORY_SQL.format(
        explanation="s.explanation_sealed" if explain else "NULL",
        member=member,
        scorer=name,
        limit=most,
        offset=skip,
    )
    limit = max(1, min(limit, HISTORY_LIMIT))
    params = [_param(postgres, member_id), scorer, limit, max(0, offset)]
    rows = await db.read_rows(sql, params)
    if not rows:
        return []
    cipher = _cipher(vault, member_id, rows[0])
    views = []
    for row in rows:
        score_id = db.as_uuid(row["id"])
        views.append(
            ScoreView(
                id=score_id,
                scorer=str(row["scorer"]),
                scorer_version=str(row["scorer_version"]),
                value=float(row["value"]),
                inputs_digest=str(row["inputs_digest"]),
                computed_at=db.as_datetime(row["computed_at"]),
                explanation=_explanation(cipher, score_id, row["explanation_sealed"])
                if explain
                else None,
                change=_change(cipher, score_id, row["change_sealed"]),
            )
        )
    return views
