"""Erase a member: destroy their key first, then purge every row, and say what was done.

One flow, idempotent and convergent (ER-06). The first transaction writes the ledger entry,
makes the member unable to log in, destroys the data key and deletes every session, token and
grant: from its commit on nothing of theirs can be decrypted and nothing authorises a read.
Then, each step safe to repeat: the ledger file entry, upstream revocation (best effort), the
purge of every member-keyed row (children first, in batches), the SQLite WAL checkpoint, the
receipt, and the first attempt at each app's signed notice. A crash anywhere is finished by
`resume_pending`, which the server runs at start and `coop restore` runs before serving.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tortoise import connections
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from coop.apps import service as apps
from coop.config import Settings
from coop.connectors.registry import Registry
from coop.consent.models import Grant
from coop.db import db_kind, drop_queued_jobs
from coop.governance import service as governance
from coop.members.models import LoginThrottle, Member
from coop.portability import inventory, ledger, upstream, webhooks
from coop.portability.models import (
    DELIVERY_PENDING,
    LEDGER_DONE,
    LEDGER_PENDING,
    DeletionLedger,
    WebhookDelivery,
)
from coop.portability.receipt import Receipt, build_receipt
from coop.types import utcnow
from coop.vault import Vault
from coop.vault.models import MemberKey

log = logging.getLogger("coop.portability.erase")

RECEIPT_TTL = timedelta(hours=1)
ERASED_PASSWORD = "!erased"  # noqa: S105 (never a valid argon2 hash: nothing matches)

# Tests set this to interrupt the flow after a named step (the kill-and-rerun checks).
StepHook = Callable[[str], Awaitable[None]]


async def _no_hook(step: str) -> None:
    return None


@dataclass(frozen=True)
class Notice:
    """An app that held a grant: who to tell, and under which pairwise subject."""

    app_id: uuid.UUID
    name: str
    subject: str
    client_id: str
    supported: bool  # a webhook URL and a webhook secret to sign with


@dataclass
class Plan:
    """What must be read while the key still exists. Lives in memory only."""

    member_id: uuid.UUID
    counts: dict[str, int]
    notices: list[Notice]
    revocations: list[upstream.Revocation] = field(default_factory=list)


@dataclass(frozen=True)
class Erasure:
    """The outcome the transport renders: the receipt, and its one-time download token."""

    receipt: Receipt
    receipt_token: str | None


async def _plan(vault: Vault, registry: Registry | None, member_id: uuid.UUID) -> Plan:
    counts = await inventory.count_rows(member_id)
    votes = await governance.count_votes(vault=vault, member_id=member_id)
    if votes:
        counts["governance_ballot"] = votes
    subjects: dict[uuid.UUID, str] = {}
    for row in (
        await Grant.filter(member_id=member_id).order_by("created_at").values("app_id", "subject")
    ):
        subjects.setdefault(uuid.UUID(str(row["app_id"])), str(row["subject"]))
    found = await apps.get_apps(ids=list(subjects))
    notices = [
        Notice(a.id, a.name, subjects[a.id], a.client_id, bool(a.webhook_url and a.webhook_salt))
        for a in sorted(found.values(), key=lambda a: a.name)
    ]
    revocations = await upstream.capture(vault=vault, registry=registry, member_id=member_id)
    return Plan(member_id, counts, notices, revocations)


async def _destroy_key(vault: Vault, plan: Plan, hash_: str) -> tuple[DeletionLedger, str]:
    """The one transaction after which the member's data is unreadable and unreachable."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    async with in_transaction():
        member = await Member.select_for_update().get_or_none(id=plan.member_id)
        entry = await DeletionLedger.create(
            id=uuid.uuid4(),
            member_hash=hash_,
            requested_at=now,
            key_destroyed_at=now,
            receipt={"deleted": plan.counts},
            receipt_token_hash=vault.token_hash(token),
            receipt_expires_at=now + RECEIPT_TTL,
        )
        if member is not None:
            await LoginThrottle.filter(key=f"email:{member.email_index}").delete()
        # Ballots are reached only through links sealed under the member's key: before it goes.
        await governance.withdraw_member(vault=vault, member_id=plan.member_id)
        await _lock_out(vault, plan.member_id, entry.id)
        for notice in plan.notices:
            await _create_delivery(entry, notice)
    return entry, token


async def _lock_out(vault: Vault, member_id: uuid.UUID, ledger_id: uuid.UUID) -> None:
    """Inside the caller's transaction: no login (no password matches, the email is free
    again), no key, and no session, token, grant or code left."""
    await Member.filter(id=member_id).update(
        password_hash=ERASED_PASSWORD, email_index=f"erased:{ledger_id.hex}"
    )
    await vault.shred(member_id)
    for holding in inventory.holdings():
        if holding.carries_authority:
            await holding.purge(member_id)
    await drop_queued_jobs(member_id)  # waiting syncs and scorings never start (ER-07)


async def _create_delivery(entry: DeletionLedger, notice: Notice) -> None:
    delivery_id = uuid.uuid4()
    first_retry = utcnow() + timedelta(seconds=webhooks.BASE_DELAY)
    body = webhooks.notice_body(
        delivery_id=delivery_id,
        ledger_id=entry.id,
        client_id=notice.client_id,
        subject=notice.subject,
        at=entry.requested_at,
    )
    await WebhookDelivery.create(
        id=delivery_id,
        ledger=entry,
        app_id=notice.app_id,
        app_name=notice.name,
        status=DELIVERY_PENDING if notice.supported else webhooks.UNSUPPORTED,
        # Not due before the first retry: the erasure makes the first attempt itself, once the
        # purge is done, and the worker takes only what that attempt never handled.
        next_attempt_at=first_retry if notice.supported else None,
        body=body if notice.supported else None,
    )


async def _purge(member_id: uuid.UUID) -> int:
    # Again: a sync that ended between the key's destruction and now may have queued one.
    total = await drop_queued_jobs(member_id)
    for holding in inventory.holdings():
        total += await holding.purge(member_id)
    return total


async def checkpoint() -> None:
    """Scrub what the database engine keeps of deleted rows (best effort, never fatal).

    SQLite: secure_delete zeroes freed pages; the WAL checkpoint removes old page copies.
    PostgreSQL: a deleted row is a dead tuple until VACUUM: vacuum the key table now, so the
    destroyed key's bytes leave the table file within the erasure itself. The other tables'
    dead tuples (ciphertext under that key, a few clear columns) are left to autovacuum
    (docs/operations.md). INDEX_CLEANUP OFF: pruning the heap page is what removes the key's
    bytes (the indexes hold member ids only); with it on, one dead row made VACUUM scan the
    whole primary-key index, 110-194 ms at a million members instead of about 1 ms, so the
    erasure grew with the number of other members. Autovacuum reclaims the index entries.
    """
    conn = connections.get("default")
    try:
        if db_kind() != "sqlite":
            await conn.execute_script(f'VACUUM (INDEX_CLEANUP OFF) "{MemberKey._meta.db_table}"')
            return
        _, rows = await conn.execute_query("PRAGMA secure_delete")
        if not rows or int(next(iter(dict(rows[0]).values()))) != 1:
            log.warning("secure_delete was off: turning it on", extra={"code": "secure_delete_off"})
            await conn.execute_query("PRAGMA secure_delete=ON")
        await conn.execute_query("PRAGMA wal_checkpoint(TRUNCATE)")
    except Exception as exc:  # a busy checkpoint or a VACUUM refused must not fail the erasure
        log.warning("storage scrub skipped", extra={"code": type(exc).__name__})


async def _finish(entry: DeletionLedger, member_id: uuid.UUID | None) -> None:
    if member_id is not None:
        await _purge(member_id)
    entry.state = LEDGER_DONE
    entry.completed_at = utcnow()
    await entry.save(update_fields=["state", "completed_at"])
    await checkpoint()


async def erase_member(
    *,
    vault: Vault,
    settings: Settings,
    member_id: uuid.UUID,
    registry: Registry | None = None,
    after_step: StepHook = _no_hook,
) -> Erasure:
    """Erase a member now. A second call for the same member returns its receipt (no token)."""
    hash_ = ledger.member_hash(vault, member_id)
    existing = await DeletionLedger.get_or_none(member_hash=hash_)
    if existing is not None:
        return Erasure(await build_receipt(existing.id), None)
    plan = await _plan(vault, registry, member_id)
    await after_step("plan")
    try:
        entry, token = await _destroy_key(vault, plan, hash_)
    except IntegrityError:  # a concurrent submit committed first: same receipt
        existing = await DeletionLedger.get(member_hash=hash_)
        return Erasure(await build_receipt(existing.id), None)
    log.info("member key destroyed", extra={"ledger": str(entry.id)})
    await after_step("key_destroyed")
    ledger.append(settings, ledger_id=entry.id, hash_=hash_, at=entry.requested_at)
    await after_step("ledger_file")
    outcomes = await upstream.revoke_all(settings=settings, revocations=plan.revocations)
    entry.receipt = {**entry.receipt, "upstream": outcomes}
    await entry.save(update_fields=["receipt"])
    await after_step("upstream")
    await _finish(entry, member_id)
    log.info("member erased", extra={"ledger": str(entry.id)})
    await after_step("purged")
    await webhooks.deliver(
        settings, vault, list(await WebhookDelivery.filter(ledger_id=entry.id, status="pending"))
    )
    await after_step("notified")
    return Erasure(await build_receipt(entry.id), token)


async def _locked_out_member(entry: DeletionLedger) -> uuid.UUID | None:
    """The member an interrupted erasure locked out: `_lock_out` renamed their email index
    after the ledger entry, in the transaction that wrote it (one indexed lookup)."""
    member_id = await Member.filter(email_index=f"erased:{entry.id.hex}").values_list(
        "id", flat=True
    )
    return uuid.UUID(str(member_id[0])) if member_id else None


async def _member_ids_by_hash(vault: Vault, hashes: set[str]) -> dict[str, uuid.UUID]:
    """Find members (or leftover keys) whose keyed hash is in `hashes`: a scan of every
    member, needed only for entries re-applied from the ledger file (a restored backup)."""
    found: dict[str, uuid.UUID] = {}
    candidates = set(await Member.all().values_list("id", flat=True))
    candidates |= set(await MemberKey.all().values_list("member_id", flat=True))
    for member_id in candidates:
        hash_ = ledger.member_hash(vault, uuid.UUID(str(member_id)))
        if hash_ in hashes:
            found[hash_] = uuid.UUID(str(member_id))
    return found


async def resume_pending(*, vault: Vault, settings: Settings) -> int:
    """Converge every erasure: re-apply the ledger file, then finish unfinished entries.

    Safe to run at any time and any number of times. Returns how many members it found and
    erased (members of a restored backup, or ones whose erasure was interrupted).
    """
    await _import_file_entries(settings)
    pending = await DeletionLedger.filter(state=LEDGER_PENDING)
    if not pending:
        return 0
    file_ids = ledger.known_ids(ledger.read(settings))
    # Entries this database wrote itself name their member through the lock-out; only the
    # ones imported from the file (no key destroyed here yet) need the hash of every member.
    restored = {e.member_hash for e in pending if e.key_destroyed_at is None}
    by_hash = await _member_ids_by_hash(vault, restored) if restored else {}
    erased = 0
    for entry in pending:
        if entry.key_destroyed_at is None:
            member_id = by_hash.get(entry.member_hash)
        else:
            member_id = await _locked_out_member(entry)
        if member_id is not None:
            await _destroy_again(vault, member_id, entry)
            erased += 1
        if entry.id not in file_ids:
            ledger.append(
                settings, ledger_id=entry.id, hash_=entry.member_hash, at=entry.requested_at
            )
        await _finish(entry, member_id)
    return erased


async def _destroy_again(vault: Vault, member_id: uuid.UUID, entry: DeletionLedger) -> None:
    async with in_transaction():
        await governance.withdraw_member(vault=vault, member_id=member_id)
        await _lock_out(vault, member_id, entry.id)
        # From now on the lock-out names the member: a later resume needs no scan.
        entry.key_destroyed_at = utcnow()
        await entry.save(update_fields=["key_destroyed_at"])


async def _import_file_entries(settings: Settings) -> None:
    """Ledger file entries missing from the database (a restored backup) become pending."""
    lines = ledger.read(settings)
    if not lines:
        return
    present = set(await DeletionLedger.all().values_list("id", flat=True))
    present_ids = {uuid.UUID(str(i)) for i in present}
    for line in lines:
        if line.ledger_id in present_ids:
            continue
        stale = await DeletionLedger.get_or_none(member_hash=line.member_hash)
        if stale is not None:
            continue
        await DeletionLedger.create(
            id=line.ledger_id,
            member_hash=line.member_hash,
            requested_at=_parse_time(line.requested_at),
            receipt={"restored": True},
        )


def _parse_time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return utcnow()
