"""What the sync engine may do to connector tables: claim, commit batches, finish a run.

Every write that makes synced data durable re-checks, inside its own transaction, that the
connection still exists with the generation the run started under and that the member's key
still exists (SY-08, ER-07): a disconnect or an erasure that lands first wins, and the batch
is dropped.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise import connections
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from coop.connectors import spec
from coop.connectors.models import Connection, Record, SyncRun
from coop.errors import KeyMissingError
from coop.types import utcnow
from coop.vault import MemberCipher, Vault
from coop.vault.models import MemberKey

RECORD_TABLE = "connector_record"
CONNECTION_TABLE = "connection"
INDEX_PURPOSE = "connector-record"


class Withdrawn(Exception):
    """The connection was disconnected, re-authorized or its member erased during the run."""


@dataclass(frozen=True)
class Claim:
    """The right to run one sync of one connection (held until `finish`)."""

    connection_id: uuid.UUID
    member_id: uuid.UUID
    connector: str
    generation: int
    run_id: uuid.UUID


@dataclass(frozen=True)
class SyncState:
    config: Mapping[str, str]
    credentials: Mapping[str, str]
    cursor: str | None


def record_key(vault: Vault, connection_id: uuid.UUID, external_id: str) -> str:
    """The keyed blind index that de-duplicates records within a connection."""
    return vault.blind_index(f"{connection_id}\x00{external_id}", purpose=INDEX_PURPOSE)


def record_id(connection_id: uuid.UUID, external_key: str) -> uuid.UUID:
    """A stable row id per (connection, external key): an upsert keeps the id its body is
    sealed against. It is derived from the blind index, so it reveals nothing more."""
    digest = hashlib.sha256(f"{connection_id}:{external_key}".encode()).digest()
    return uuid.UUID(bytes=digest[:16], version=5)


def seal_body(cipher: MemberCipher, row_id: uuid.UUID, record: spec.Record) -> bytes:
    body: dict[str, Any] = {
        "counts": {str(k): int(v) for k, v in record.counts.items()},
        "text": record.text,
        "title": record.title,
        "url": record.url,
    }
    if record.network:
        body["network"] = record.network
    return cipher.seal_json(body, table=RECORD_TABLE, column="body_sealed", row=row_id)


def seal_field(cipher: MemberCipher, connection_id: uuid.UUID, column: str, value: Any) -> bytes:
    return cipher.seal_json(value, table=CONNECTION_TABLE, column=column, row=connection_id)


def open_field(cipher: MemberCipher, row: Connection, column: str) -> Any:
    blob = getattr(row, column)
    if blob is None:
        return None
    return cipher.open_json(blob, table=CONNECTION_TABLE, column=column, row=row.id)


async def claim(*, connection_id: uuid.UUID, lease_seconds: float) -> Claim | None:
    """Atomically mark the connection `syncing` unless a live run holds it (SY-06).

    One conditional UPDATE with a row count check: portable to SQLite and PostgreSQL, and two
    concurrent claimers can never both see one row updated."""
    now = utcnow()
    free = Q(status__not="syncing") | Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    updated = await Connection.filter(Q(id=connection_id) & free).update(
        status="syncing", lease_until=now + timedelta(seconds=lease_seconds)
    )
    if updated != 1:
        return None
    row = await Connection.get(id=connection_id)
    await _interrupt_open_runs([row.id], now)
    run = await SyncRun.create(id=uuid.uuid4(), connection_id=row.id, started_at=now)
    return Claim(row.id, row.member_id, row.connector, row.generation, run.id)  # type: ignore[attr-defined]


async def load_state(*, vault: Vault, claim: Claim) -> SyncState:
    row = await Connection.get_or_none(id=claim.connection_id, generation=claim.generation)
    if row is None:
        raise Withdrawn()
    try:
        cipher = await vault.cipher_for(claim.member_id)
    except KeyMissingError:
        raise Withdrawn() from None
    return SyncState(
        config=open_field(cipher, row, "config_sealed") or {},
        credentials=open_field(cipher, row, "credentials_sealed") or {},
        cursor=open_field(cipher, row, "cursor_sealed"),
    )


async def still_wanted(claim: Claim) -> bool:
    """True while the connection exists under the same generation, the member has a key and
    the claim's run is still open (not finished, nor interrupted and claimed again)."""
    alive = await Connection.filter(id=claim.connection_id, generation=claim.generation).exists()
    return (
        alive
        and await MemberKey.filter(member_id=claim.member_id).exists()
        and await run_open(claim)
    )


async def run_open(claim: Claim) -> bool:
    """Whether the claim's run is still to be finished: a job that runs again after it was
    (a retried copy of a job whose worker died after the run ended, or whose claim expired and
    was taken again) must change nothing."""
    return await SyncRun.filter(id=claim.run_id, finished_at__isnull=True).exists()


async def _interrupt_open_runs(connection_ids: Sequence[uuid.UUID], now: datetime) -> None:
    """A new claim on a connection ends the runs whose claims expired (their process died):
    recorded `interrupted`, and a retried copy of their job finds them closed."""
    await SyncRun.filter(connection_id__in=list(connection_ids), finished_at__isnull=True).update(
        finished_at=now, outcome="interrupted"
    )


async def _lock_live(claim: Claim) -> None:
    # select_for_update makes a concurrent disconnect wait for this commit (PostgreSQL);
    # SQLite serialises writers, so the check and the writes cannot interleave there either.
    row = (
        await Connection.filter(id=claim.connection_id, generation=claim.generation)
        .select_for_update()
        .first()
    )
    if row is None or not await MemberKey.filter(member_id=claim.member_id).exists():
        raise Withdrawn()
    if not await run_open(claim):
        raise Withdrawn()


def _dedupe(records: Sequence[spec.Record]) -> list[spec.Record]:
    latest: dict[str, spec.Record] = {}
    for record in records:
        latest[record.external_id] = record  # the last version of an item in a batch wins
    return list(latest.values())


async def commit_batch(
    *,
    vault: Vault,
    claim: Claim,
    records: Sequence[spec.Record],
    cursor: str | None,
    lease_seconds: float,
) -> int:
    """Upsert the batch's records and save its cursor in ONE transaction (SY-01, SY-02).

    Returns how many records are new."""
    now = utcnow()
    async with in_transaction():
        await _lock_live(claim)
        try:
            cipher = await vault.cipher_for(claim.member_id)
        except KeyMissingError:
            raise Withdrawn() from None
        before = await Record.filter(connection_id=claim.connection_id).count()
        rows = []
        for record in _dedupe(records):
            key = record_key(vault, claim.connection_id, record.external_id)
            row_id = record_id(claim.connection_id, key)
            rows.append(
                Record(
                    id=row_id,
                    member_id=claim.member_id,
                    connection_id=claim.connection_id,
                    kind=record.kind,
                    external_key=key,
                    occurred_at=record.occurred_at,
                    body_sealed=seal_body(cipher, row_id, record),
                    updated_at=now,
                )
            )
        if rows:
            await Record.bulk_create(
                rows,
                on_conflict=["connection_id", "external_key"],
                update_fields=["kind", "occurred_at", "body_sealed", "updated_at"],
            )
        after = await Record.filter(connection_id=claim.connection_id).count()
        await Connection.filter(id=claim.connection_id).update(
            cursor_sealed=seal_field(cipher, claim.connection_id, "cursor_sealed", cursor),
            records_count=after,
            lease_until=now + timedelta(seconds=lease_seconds),
        )
    return after - before


async def save_credentials(*, vault: Vault, claim: Claim, credentials: Mapping[str, str]) -> None:
    """Commit refreshed credentials at once, in their own transaction (SY-05)."""
    async with in_transaction():
        await _lock_live(claim)
        cipher = await vault.cipher_for(claim.member_id)
        sealed = seal_field(cipher, claim.connection_id, "credentials_sealed", dict(credentials))
        await Connection.filter(id=claim.connection_id).update(credentials_sealed=sealed)


async def finish(
    *,
    claim: Claim,
    status: str,
    reason: str,
    next_sync_at: datetime | None,
    outcome: str,
    error_code: str,
    records_added: int,
) -> None:
    """Release the claim: record the state members see and close the run's history row."""
    now = utcnow()
    async with in_transaction():
        values: dict[str, Any] = {
            "status": status,
            "status_reason": reason[:255],
            "lease_until": None,
            "next_sync_at": next_sync_at,
        }
        if outcome == "ok":
            values["last_sync_at"] = now
        closed = await SyncRun.filter(id=claim.run_id, finished_at__isnull=True).update(
            finished_at=now, outcome=outcome, error_code=error_code, records_added=records_added
        )
        if not closed:  # ended already: the connection belongs to a later claim, if any
            return
        await Connection.filter(id=claim.connection_id, generation=claim.generation).update(
            **values
        )


async def release_withdrawn(claim: Claim) -> None:
    """A run that lost its connection's generation gives the (re-authorized) row back; the
    row of an erased member is left to the erasure's purge (never queued again, ER-07)."""
    closed = await SyncRun.filter(id=claim.run_id, finished_at__isnull=True).update(
        finished_at=utcnow(), outcome="withdrawn"
    )
    if not closed:  # the run had ended: its claim is not this job's to give back
        return
    if await MemberKey.filter(member_id=claim.member_id).exists():
        await Connection.filter(id=claim.connection_id, status="syncing").update(
            status="ok", status_reason="", lease_until=None, next_sync_at=utcnow()
        )


async def release_interrupted(*, now: datetime) -> int:
    """Give back every claim left by runs that cannot finish (their process is gone, see
    coop.jobs.recovery): the connection syncs again soon, the run is recorded `interrupted`.
    Returns how many connections were released."""
    released = await Connection.filter(status="syncing").update(
        status="ok", status_reason="", lease_until=None, next_sync_at=now
    )
    await SyncRun.filter(outcome="running").update(finished_at=now, outcome="interrupted")
    return int(released)


_CLAIM_DUE = """
WITH due AS (
    SELECT id FROM connection
    WHERE next_sync_at <= $1
      AND (status IN ('ok', 'failing', 'throttled') OR (status = 'syncing' AND lease_until < $1))
    ORDER BY next_sync_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
UPDATE connection c SET status = 'syncing', lease_until = $3
FROM due WHERE c.id = due.id
RETURNING c.id, c.member_id, c.connector, c.generation
"""
_RUNS = """
INSERT INTO sync_run (id, connection_id, started_at, outcome, records_added, error_code)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::text[], $5::int[],
                     $6::text[])
"""


async def claim_due(*, now: datetime, limit: int, lease_seconds: float) -> list[Claim]:
    """PostgreSQL: claim up to `limit` due connections in two statements (the scheduler of
    a million connections cannot afford a round trip per claim). Rows another claimer holds
    are skipped, never waited for; the claim rule is `claim`'s."""
    conn = connections.get("default")
    rows = await conn.execute_query_dict(
        _CLAIM_DUE, [now, limit, now + timedelta(seconds=lease_seconds)]
    )
    claims = [
        Claim(r["id"], r["member_id"], str(r["connector"]), int(r["generation"]), uuid.uuid4())
        for r in rows
    ]
    if claims:
        n = len(claims)
        await _interrupt_open_runs([c.connection_id for c in claims], now)
        await conn.execute_query(
            _RUNS,
            [
                [c.run_id for c in claims],
                [c.connection_id for c in claims],
                [now] * n,
                ["running"] * n,
                [0] * n,
                [""] * n,
            ],
        )
    return claims


async def due_connections(*, now: datetime, limit: int) -> list[uuid.UUID]:
    """Connections whose next sync is due and that are not waiting on the member."""
    ids = (
        await Connection.filter(next_sync_at__lte=now)
        .filter(
            Q(status__in=("ok", "failing", "throttled"))
            | Q(status="syncing", lease_until__lt=now)  # a crashed run's expired claim
        )
        .order_by("next_sync_at")
        .limit(limit)
        .values_list("id", flat=True)
    )
    return [uuid.UUID(str(i)) for i in ids]


__all__ = [
    "Claim",
    "SyncState",
    "Withdrawn",
    "claim",
    "claim_due",
    "commit_batch",
    "due_connections",
    "finish",
    "load_state",
    "record_id",
    "record_key",
    "release_interrupted",
    "release_withdrawn",
    "run_open",
    "save_credentials",
    "still_wanted",
]
