"""Unversioned changes: a scorer version that gave another value for exactly the same inputs
(not deterministic, or changed without a version bump). Members see it as an UNEXPLAINED
cause (coop.scoring.causes); the operator sees the counts here, in `coop plugins list`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from tortoise.expressions import F

from coop.scoring.models import ScorerDrift
from coop.types import utcnow


@dataclass(frozen=True)
class Drift:
    scorer: str
    version: str
    seen: int
    last_seen_at: datetime

    def warning(self) -> str:
        times = f"{self.seen} time{'' if self.seen == 1 else 's'}"
        last = f"{self.last_seen_at:%Y-%m-%d %H:%M} UTC"
        return (
            f"WARNING: version {self.version} gave another value for the same inputs {times} "
            f"(last {last}): not deterministic, or changed without a version bump"
        )


async def record(*, scorer: str, version: str) -> None:
    """Count one unversioned change (call inside the transaction that stores the score)."""
    now = utcnow()
    updated = await ScorerDrift.filter(scorer=scorer, scorer_version=version).update(
        seen=F("seen") + 1, last_seen_at=now
    )
    if not updated:
        await ScorerDrift.create(
            id=uuid.uuid4(), scorer=scorer, scorer_version=version, seen=1, last_seen_at=now
        )


async def list_all() -> list[Drift]:
    rows = await ScorerDrift.all().order_by("scorer", "scorer_version")
    return [Drift(r.scorer, r.scorer_version, r.seen, r.last_seen_at) for r in rows]
