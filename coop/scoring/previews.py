"""Previews of a new scorer version: what it would give a member, with the causes, before it
becomes their score (coop.scoring.versions decides when; apps never see one)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.transactions import in_transaction

from coop.scoring import changes
from coop.scoring.changes import Change
from coop.scoring.models import ScorePreview
from coop.vault import MemberCipher, Vault

TABLE = "score_preview"


@dataclass(frozen=True)
class PreviewView:
    scorer: str
    version: str
    value: float
    computed_at: datetime
    change: Change | None


async def store(
    *,
    cipher: MemberCipher,
    member_id: uuid.UUID,
    scorer: str,
    version: str,
    value: float,
    now: datetime,
    change: dict[str, Any] | None,
) -> uuid.UUID:
    """Replace the member's preview of `scorer` (one at a time: the latest run's)."""
    preview_id = uuid.uuid4()
    sealed = None
    if change is not None:
        sealed = cipher.seal_json(change, table=TABLE, column="change_sealed", row=preview_id)
    async with in_transaction():
        await ScorePreview.filter(member_id=member_id, scorer=scorer).delete()
        await ScorePreview.create(
            id=preview_id,
            member_id=member_id,
            scorer=scorer,
            scorer_version=version,
            value=value,
            computed_at=now,
            change_sealed=sealed,
        )
    return preview_id


async def get(*, vault: Vault, member_id: uuid.UUID, scorer: str) -> PreviewView | None:
    row = await ScorePreview.get_or_none(member_id=member_id, scorer=scorer)
    if row is None:
        return None
    change = None
    if row.change_sealed is not None:
        cipher = await vault.cipher_for(member_id)
        data = cipher.open_json(row.change_sealed, table=TABLE, column="change_sealed", row=row.id)
        change = changes.from_json(data)
    return PreviewView(row.scorer, row.scorer_version, row.value, row.computed_at, change)


async def discard(*, member_id: uuid.UUID, scorer: str) -> None:
    await ScorePreview.filter(member_id=member_id, scorer=scorer).delete()
