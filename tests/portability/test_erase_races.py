"""Erasure against work in flight: app reads, syncs and scorings that were already running
never read or write anything of the member after the key is destroyed (ER-02, ER-07)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from coop.config import Settings
from coop.connectors import spec, store
from coop.connectors.models import Connection, Record
from coop.consent import service as consent
from coop.errors import CoopError
from coop.portability import erase, inventory, ledger, lifecycle
from coop.scoring import service as scoring
from coop.scoring.spec import ScoreResult
from coop.scoring.validate import ScorerMeta
from coop.types import utcnow
from coop.vault import Vault
from tests.portability.factories import make_app, make_person


async def test_concurrent_app_reads_never_succeed_after_the_key_is_destroyed(
    db: str, vault: Vault, settings: Settings
) -> None:
    app_id, _ = await make_app(vault, "Alpha")
    person = await make_person(vault, settings, app_ids=[app_id], records=20)
    token = person.access_tokens[0]
    record = await Record.filter(member_id=person.member_id).first()
    assert record is not None
    committed: list[float] = []
    reads: list[tuple[float, bool]] = []
    stop = asyncio.Event()

    async def read_once() -> bool:
        principal = await consent.resolve_bearer(token)
        if principal is None:
            return False
        try:
            cipher = await vault.cipher_for(principal.member_id)
            cipher.open(
                record.body_sealed, table="connector_record", column="body_sealed", row=record.id
            )
        except CoopError:
            return False
        return True

    read_before = asyncio.Event()  # a read succeeded: the readers are running
    read_after = asyncio.Event()  # as many reads as readers, begun after the key went, ended

    async def reader() -> None:
        while not stop.is_set():
            started = time.monotonic()
            reads.append((started, await read_once()))
            if reads[-1][1]:
                read_before.set()
            if committed and sum(t >= committed[0] for t, _ in reads) >= len(readers):
                read_after.set()
            await asyncio.sleep(0)

    async def mark(step: str) -> None:
        if step == "key_destroyed":
            committed.append(time.monotonic())

    readers = [asyncio.create_task(reader()) for _ in range(8)]
    await asyncio.wait_for(read_before.wait(), 60)  # events, not sleeps: load-proof
    await erase.erase_member(
        vault=vault, settings=settings, member_id=person.member_id, after_step=mark
    )
    await asyncio.wait_for(read_after.wait(), 60)
    stop.set()
    await asyncio.gather(*readers)

    assert any(ok for _, ok in reads), "the readers never read anything before the erasure"
    late = [(t, ok) for t, ok in reads if t >= committed[0]]
    assert late and not any(ok for _, ok in late)
    assert await consent.resolve_bearer(token) is None


async def test_a_sync_in_flight_cannot_commit_after_the_erasure(
    db: str, vault: Vault, settings: Settings
) -> None:
    person = await make_person(vault, settings, connectors=("feed",))
    connection = await Connection.get(member_id=person.member_id)
    claim = await store.claim(connection_id=connection.id, lease_seconds=60)
    assert claim is not None

    await erase.erase_member(vault=vault, settings=settings, member_id=person.member_id)

    assert not await store.still_wanted(claim)
    batch = [spec.Record(kind=spec.POST, external_id="late", occurred_at=utcnow())]
    try:
        await store.commit_batch(
            vault=vault, claim=claim, records=batch, cursor="c", lease_seconds=60
        )
    except store.Withdrawn:
        pass
    else:
        raise AssertionError("a sync committed records for an erased member")
    assert await inventory.count_rows(person.member_id) == {}


class ErasingRunner:
    """A scorer runner whose run is interrupted by the member's erasure (mid-scoring)."""

    def __init__(self, erase_now: Any) -> None:
        self.erase_now = erase_now

    def meta(self, scorer: str) -> ScorerMeta:
        return ScorerMeta(scorer, "1.0", scorer, "", ("post",), (0.0, 100.0), False, "")

    def distribution(self, scorer: str) -> None:
        return None

    async def run(self, *, scorer: str, records: Sequence[Any], now: datetime) -> ScoreResult:
        await self.erase_now()
        return ScoreResult(value=42.0)


async def test_a_scoring_in_flight_is_dropped_after_the_erasure(
    db: str, vault: Vault, settings: Settings
) -> None:
    person = await make_person(vault, settings, connectors=("feed",))

    async def erase_now() -> None:
        await erase.erase_member(vault=vault, settings=settings, member_id=person.member_id)

    outcome = await scoring.compute_score(
        vault=vault,
        runner=ErasingRunner(erase_now),  # type: ignore[arg-type]
        member_id=person.member_id,
        scorer="reach",
        records=[scoring.MemberRecord(uuid.uuid4(), "post", utcnow())],
    )
    assert outcome.status == scoring.DROPPED
    assert await inventory.count_rows(person.member_id) == {}


async def test_server_start_reapplies_ledger_entries_the_database_lacks(
    db: str, vault: Vault, settings: Settings
) -> None:
    """As after a restore done by hand: the ledger file names a member the DB still has."""
    person = await make_person(vault, settings)
    ledger.append(
        settings,
        ledger_id=uuid.uuid4(),
        hash_=ledger.member_hash(vault, person.member_id),
        at=utcnow(),
    )
    assert await lifecycle.converge(vault=vault, settings=settings) == 1
    assert await inventory.count_rows(person.member_id) == {}
    assert await lifecycle.converge(vault=vault, settings=settings) == 0
