"""Connector use cases for members: the catalogue, connect, health, disconnect, records."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tortoise.transactions import in_transaction

from coop.connectors import spec, store
from coop.connectors.models import Connection, Record, SyncRun
from coop.connectors.outbound import Guard, Limits, OutboundClient
from coop.connectors.registry import Registry
from coop.errors import IntegrityError, InvalidInputError, NotFoundError
from coop.types import utcnow
from coop.vault import MemberCipher, Vault

log = logging.getLogger("coop.connectors")

MAX_URL_LENGTH = 2048


@dataclass(frozen=True)
class CatalogueEntry:
    """A connector as members see it before connecting."""

    name: str
    title: str
    description: str
    reads: tuple[tuple[str, str], ...]  # (kind, plain words)
    never_reads: tuple[str, ...]
    auth: str
    unavailable: str = ""  # why members cannot connect it here ("" when they can)


@dataclass(frozen=True)
class RunView:
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    records_added: int
    error_code: str


@dataclass(frozen=True)
class ConnectionView:
    """A connection's health, for its owner. `label` is decrypted (e.g. the feed URL)."""

    id: uuid.UUID
    connector: str
    title: str
    label: str
    status: str
    status_reason: str
    last_sync_at: datetime | None
    next_sync_at: datetime | None
    records_count: int
    created_at: datetime
    auth: str
    runs: tuple[RunView, ...] = field(default=())


@dataclass(frozen=True)
class StoredRecord:
    """A decrypted record with its row id (the scoring flow's `ref` source)."""

    id: uuid.UUID
    connection_id: uuid.UUID
    kind: str
    occurred_at: datetime
    counts: Mapping[str, int]
    text: str | None
    title: str | None
    url: str | None
    network: str = ""  # where it was published: the record's own, else its connector's name


def list_catalogue(*, registry: Registry) -> list[CatalogueEntry]:
    return [
        CatalogueEntry(
            name=c.name,
            title=c.title,
            description=c.description,
            reads=tuple((k, spec.KINDS[k]) for k in c.reads),
            never_reads=tuple(c.never_reads),
            auth=c.auth,
            unavailable=_unavailable_reason(c),
        )
        for c in registry.all()
    ]


def _unavailable_reason(connector: object) -> str:
    if isinstance(connector, spec.Availability):
        return connector.unavailable_reason or ""
    return ""


def _label(connector: str, config: Mapping[str, Any]) -> str:
    for key in ("url", "instance", "handle", "archive"):
        if config.get(key):
            return str(config[key])
    return connector


async def _view(
    vault: Vault, registry: Registry, row: Connection, runs: Iterable[SyncRun] = ()
) -> ConnectionView:
    cipher = await vault.cipher_for(row.member_id)  # type: ignore[attr-defined]
    return _view_with(cipher, registry, row, runs)


def _view_with(
    cipher: MemberCipher, registry: Registry, row: Connection, runs: Iterable[SyncRun] = ()
) -> ConnectionView:
    """The view of `row`, its sealed config opened with the member's `cipher`."""
    config = store.open_field(cipher, row, "config_sealed") or {}
    connector = registry.find(row.connector)
    return ConnectionView(
        id=row.id,
        connector=row.connector,
        title=connector.title if connector else row.connector,
        label=_label(row.connector, config),
        status=row.status,
        status_reason=row.status_reason,
        last_sync_at=row.last_sync_at,
        next_sync_at=row.next_sync_at,
        records_count=row.records_count,
        created_at=row.created_at,
        auth=connector.auth if connector else "",
        runs=tuple(
            RunView(r.started_at, r.finished_at, r.outcome, r.records_added, r.error_code)
            for r in runs
        ),
    )


async def create_connection(
    *,
    vault: Vault,
    registry: Registry,
    member_id: uuid.UUID,
    connector: str,
    config: Mapping[str, str],
    credentials: Mapping[str, str] | None = None,
) -> ConnectionView:
    """Record the member's explicit authorization of a source. Nothing is fetched here."""
    registry.get(connector)
    cipher = await vault.cipher_for(member_id)
    connection_id = uuid.uuid4()
    async with in_transaction():
        row = await Connection.create(
            id=connection_id,
            member_id=member_id,
            connector=connector,
            status="ok",
            config_sealed=store.seal_field(cipher, connection_id, "config_sealed", dict(config)),
            credentials_sealed=(
                None
                if credentials is None
                else store.seal_field(
                    cipher, connection_id, "credentials_sealed", dict(credentials)
                )
            ),
            created_at=utcnow(),
        )
    log.info("connection created", extra={"connection": str(row.id), "connector": connector})
    return _view_with(cipher, registry, row)


async def connect_feed(
    *, vault: Vault, registry: Registry, guard: Guard, member_id: uuid.UUID, url: str
) -> ConnectionView:
    """Connect a feed after the SSRF guard accepted its URL (SY-09)."""
    url = url.strip()
    if not url or len(url) > MAX_URL_LENGTH:
        raise InvalidInputError("Enter the address of your feed.", code="invalid_url")
    await guard.check(url)
    return await create_connection(
        vault=vault, registry=registry, member_id=member_id, connector="feed", config={"url": url}
    )


async def reauthorize(
    *,
    vault: Vault,
    member_id: uuid.UUID,
    connection_id: uuid.UUID,
    credentials: Mapping[str, str],
    config: Mapping[str, str] | None = None,
) -> None:
    """Store new credentials (and, when given, new settings) after the member reconnected.
    The generation moves on, so a run still holding the old authorization cannot commit."""
    row = await _owned(member_id, connection_id)
    cipher = await vault.cipher_for(member_id)
    sealed = store.seal_field(cipher, row.id, "credentials_sealed", dict(credentials))
    changes: dict[str, Any] = {}
    if config is not None:
        changes["config_sealed"] = store.seal_field(cipher, row.id, "config_sealed", dict(config))
    await Connection.filter(id=row.id).update(
        **changes,
        credentials_sealed=sealed,
        generation=row.generation + 1,
        status="ok",
        status_reason="",
        lease_until=None,
        next_sync_at=utcnow(),
    )


async def _owned(member_id: uuid.UUID, connection_id: uuid.UUID) -> Connection:
    row = await Connection.get_or_none(id=connection_id, member_id=member_id)
    if row is None:
        raise NotFoundError("There is no such connection.", code="connection_not_found")
    return row


async def list_connections(
    *, vault: Vault, registry: Registry, member_id: uuid.UUID
) -> list[ConnectionView]:
    rows = await Connection.filter(member_id=member_id).order_by("created_at")
    if not rows:
        return []
    cipher = await vault.cipher_for(member_id)  # one unwrap for every connection
    return [_view_with(cipher, registry, row) for row in rows]


async def get_connection(
    *,
    vault: Vault,
    registry: Registry,
    member_id: uuid.UUID,
    connection_id: uuid.UUID,
    history: int = 10,
) -> ConnectionView:
    row = await _owned(member_id, connection_id)
    runs = await SyncRun.filter(connection_id=row.id).order_by("-started_at").limit(history)
    return await _view(vault, registry, row, runs)


async def find_connection(*, member_id: uuid.UUID, connector: str) -> uuid.UUID | None:
    """The member's oldest connection to `connector`, if any (e.g. the archive connection)."""
    row = (
        await Connection.filter(member_id=member_id, connector=connector)
        .order_by("created_at")
        .first()
    )
    return row.id if row else None


async def delete_connection(*, member_id: uuid.UUID, connection_id: uuid.UUID) -> int:
    """Delete a connection and its records (without telling the upstream)."""
    row = await _owned(member_id, connection_id)
    async with in_transaction():
        deleted: int = await Record.filter(connection_id=row.id).delete()
        await Connection.filter(id=row.id).delete()
    return deleted


RevokeAttempt = Callable[[], Awaitable[bool]]
# Revocation gets tighter limits than a sync: it runs inside the member's request.
REVOKE_LIMITS = Limits(connect=3.0, read=5.0, total=10.0)


async def disconnect(
    *,
    vault: Vault,
    registry: Registry,
    guard: Guard,
    member_id: uuid.UUID,
    connection_id: uuid.UUID,
    retry_revoke: Callable[[RevokeAttempt], None] | None = None,
) -> int:
    """Delete the connection and every record it brought, then revoke upstream if the
    connector can. The deletion commits first and never waits on, or rolls back for, the
    upstream. A failed revocation is handed to `retry_revoke` (the jobs flow retries it in the
    background with backoff). Returns the number of records deleted."""
    row = await _owned(member_id, connection_id)
    cipher = await vault.cipher_for(member_id)
    config = store.open_field(cipher, row, "config_sealed") or {}
    credentials = store.open_field(cipher, row, "credentials_sealed") or {}
    deleted = await delete_connection(member_id=member_id, connection_id=connection_id)
    log.info("connection deleted", extra={"connection": str(row.id), "records": deleted})
    connector = registry.find(row.connector)
    revoke = getattr(connector, "revoke", None)
    if callable(revoke) and credentials:

        async def attempt() -> bool:
            return await _revoke(revoke, guard, config, credentials, str(row.id))

        if not await attempt() and retry_revoke is not None:
            retry_revoke(attempt)
    return deleted


async def _revoke(
    revoke: Any, guard: Guard, config: Mapping[str, str], credentials: Mapping[str, str], cid: str
) -> bool:
    async def nothing(_: Mapping[str, str]) -> None:
        return None

    async def wanted() -> bool:
        return True

    async with OutboundClient(guard, REVOKE_LIMITS) as http:
        ctx = spec.SyncContext(
            http=http,
            config=config,
            credentials=credentials,
            now=utcnow(),
            save_credentials=nothing,
            still_wanted=wanted,
        )
        try:
            await revoke(ctx)
        except Exception as exc:  # upstream trouble never undoes a member's disconnect
            log.warning(
                "upstream revoke failed", extra={"connection": cid, "error": type(exc).__name__}
            )
            return False
    return True


async def has_records(*, member_id: uuid.UUID, kinds: Iterable[str]) -> bool:
    """Whether the member has any record of these kinds (nothing is decrypted)."""
    return await Record.filter(member_id=member_id, kind__in=list(kinds)).exists()


async def list_records(
    *,
    vault: Vault,
    member_id: uuid.UUID,
    kinds: Iterable[str] | None = None,
    connection_id: uuid.UUID | None = None,
    latest: int | None = None,
    ids: Iterable[uuid.UUID] | None = None,
    skip_unreadable: bool = False,
) -> list[StoredRecord]:
    """The member's records, decrypted, oldest first, in one query: optionally only some kinds,
    one connection, the given `ids`, or the `latest` N (newest first).

    A record whose ciphertext fails its integrity check raises IntegrityError, unless
    `skip_unreadable` (pages that only decorate with records, such as the links of a score's
    contributions): it is then left out and logged by id, without its content."""
    query = Record.filter(member_id=member_id)
    if ids is not None:
        query = query.filter(id__in=list(ids))
    if kinds is not None:
        query = query.filter(kind__in=list(kinds))
    if connection_id is not None:
        query = query.filter(connection_id=connection_id)
    query = query.order_by("occurred_at", "id")
    if latest is not None:
        query = query.order_by("-occurred_at", "-id").limit(latest)
    rows = await query.values("id", "connection_id", "kind", "occurred_at", "body_sealed")
    if not rows:
        return []
    cipher = await vault.cipher_for(member_id)
    names = await Connection.filter(member_id=member_id).values_list("id", "connector")
    connectors = {str(cid): str(name) for cid, name in names}
    result = []
    for row in rows:
        try:
            body = cipher.open_json(
                row["body_sealed"], table=store.RECORD_TABLE, column="body_sealed", row=row["id"]
            )
        except IntegrityError as exc:
            if not skip_unreadable:
                raise
            log.warning(
                "record unreadable",
                extra={"record": str(row["id"]), "error": type(exc).__name__},
            )
            continue
        result.append(
            StoredRecord(
                id=uuid.UUID(str(row["id"])),
                connection_id=uuid.UUID(str(row["connection_id"])),
                kind=row["kind"],
                occurred_at=row["occurred_at"],
                counts=body.get("counts") or {},
                text=body.get("text"),
                title=body.get("title"),
                url=body.get("url"),
                network=body.get("network") or connectors.get(str(row["connection_id"]), ""),
            )
        )
    return result


def distinct_records(records: Iterable[StoredRecord]) -> list[StoredRecord]:
    """The records with one copy of each item that two connections both brought (the same
    Mastodon status from the `mastodon` connector and from an uploaded archive): records of
    one kind with the same `url` are one item, and the copy with the most reactions stays.
    Records without a url are kept as they are (within a connection the engine already
    de-duplicates by external id)."""
    kept: dict[tuple[str, str], StoredRecord] = {}
    result: list[StoredRecord] = []
    for record in records:
        if not record.url:
            result.append(record)
            continue
        key = (record.kind, record.url)
        other = kept.get(key)
        if other is None or sum(record.counts.values()) > sum(other.counts.values()):
            kept[key] = record
    result.extend(kept.values())
    return sorted(result, key=lambda r: (r.occurred_at, str(r.id)))
