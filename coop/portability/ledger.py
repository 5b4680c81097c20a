"""The deletion ledger: pseudonymous ids of erased members, in the database and in a file.

The file (`<data dir>/deletion-ledger.jsonl`, append-only, one JSON object a line) lives
outside the database on purpose: a database restored from a backup taken before an erasure
has no ledger row for it, but the file still does, and `coop restore` (and every server start)
re-applies it. An entry holds a random ledger id, a keyed hash of the member id and a time:
nothing that identifies the person without the server secret and their member id.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from coop.config import Settings
from coop.vault import Vault

LEDGER_FILE = "deletion-ledger.jsonl"
HASH_PURPOSE = "deletion-ledger"


@dataclass(frozen=True)
class LedgerLine:
    ledger_id: uuid.UUID
    member_hash: str
    requested_at: str


def member_hash(vault: Vault, member_id: uuid.UUID) -> str:
    """The keyed hash that names a member in the ledger (HMAC under the server secret)."""
    return vault.blind_index(str(member_id), purpose=HASH_PURPOSE)


def ledger_path(settings: Settings) -> Path:
    return settings.data_dir / LEDGER_FILE


def append(settings: Settings, *, ledger_id: uuid.UUID, hash_: str, at: datetime) -> None:
    """Append one entry and fsync it (the file is created 0600)."""
    path = ledger_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    line = json.dumps(
        {"ledger_id": str(ledger_id), "member_hash": hash_, "requested_at": at.isoformat()},
        separators=(",", ":"),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def read(settings: Settings) -> list[LedgerLine]:
    """Every entry in the file; a torn last line (a crash mid-append) is skipped."""
    path = ledger_path(settings)
    if not path.exists():
        return []
    lines = []
    with path.open() as fh:
        for raw in fh:
            try:
                body = json.loads(raw)
                lines.append(
                    LedgerLine(
                        ledger_id=uuid.UUID(body["ledger_id"]),
                        member_hash=str(body["member_hash"]),
                        requested_at=str(body["requested_at"]),
                    )
                )
            except (ValueError, KeyError, TypeError):
                continue
    return lines


def known_ids(lines: Iterable[LedgerLine]) -> set[uuid.UUID]:
    return {line.ledger_id for line in lines}
