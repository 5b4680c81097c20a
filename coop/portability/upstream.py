"""Upstream revocation during an erasure: give each connector's authorization back.

Credentials are opened while the member's key still exists and are held in memory only; the
revocation runs after the key is destroyed, bounded in time, and its failures are recorded on
the receipt but never block or roll back the erasure (ER-03). An erasure interrupted between
the key destruction and this step cannot revoke any more (the credentials are unreadable by
then, for everyone): the receipt says so.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from coop.config import Settings
from coop.connectors import spec, store
from coop.connectors.models import Connection
from coop.connectors.outbound import Guard, Limits, OutboundClient
from coop.connectors.registry import Registry
from coop.errors import KeyMissingError
from coop.types import utcnow
from coop.vault import Vault

log = logging.getLogger("coop.portability.upstream")

LIMITS = Limits(connect=3.0, read=5.0, total=10.0, max_bytes=64 * 1024)
TOTAL_SECONDS = 20.0


@dataclass(frozen=True)
class Revocation:
    connection_id: uuid.UUID
    connector: str
    config: Mapping[str, Any]
    credentials: Mapping[str, Any]
    revoke: Any


async def capture(
    *, vault: Vault, registry: Registry | None, member_id: uuid.UUID
) -> list[Revocation]:
    """The revocations to run: connections whose connector can revoke and that hold tokens."""
    if registry is None:
        return []
    rows = await Connection.filter(member_id=member_id, credentials_sealed__isnull=False)
    if not rows:
        return []
    try:
        cipher = await vault.cipher_for(member_id)
    except KeyMissingError:
        return []
    found = []
    for row in rows:
        revoke = getattr(registry.find(row.connector), "revoke", None)
        if not callable(revoke):
            continue
        found.append(
            Revocation(
                connection_id=row.id,
                connector=row.connector,
                config=store.open_field(cipher, row, "config_sealed") or {},
                credentials=store.open_field(cipher, row, "credentials_sealed") or {},
                revoke=revoke,
            )
        )
    return found


async def _revoke_one(http: OutboundClient, item: Revocation) -> dict[str, str]:
    async def nothing(_: Mapping[str, str]) -> None:
        return None

    async def wanted() -> bool:
        return True

    ctx = spec.SyncContext(
        http=http,
        config={str(k): str(v) for k, v in item.config.items()},
        credentials={str(k): str(v) for k, v in item.credentials.items()},
        now=utcnow(),
        save_credentials=nothing,
        still_wanted=wanted,
    )
    try:
        await item.revoke(ctx)
    except Exception as exc:  # upstream trouble never undoes an erasure
        log.warning("upstream revoke failed", extra={"code": type(exc).__name__})
        return {"connector": item.connector, "status": "failed", "error": type(exc).__name__}
    # Connectors log and swallow upstream refusals themselves: "requested" is all we know.
    return {"connector": item.connector, "status": "requested", "error": ""}


async def revoke_all(*, settings: Settings, revocations: list[Revocation]) -> list[dict[str, str]]:
    """Revoke concurrently, within TOTAL_SECONDS; returns one outcome per connection."""
    if not revocations:
        return []
    async with OutboundClient(Guard.from_settings(settings), LIMITS) as http:
        tasks = [asyncio.ensure_future(_revoke_one(http, r)) for r in revocations]
        done, pending = await asyncio.wait(tasks, timeout=TOTAL_SECONDS)
        for task in pending:
            task.cancel()
    return [
        t.result()
        if t in done and not t.cancelled()
        else {"connector": r.connector, "status": "failed", "error": "timeout"}
        for t, r in zip(tasks, revocations, strict=True)
    ]
