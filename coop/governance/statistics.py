"""Aggregate statistics of how scores would move under a proposal, from members who chose to
share for this purpose only (docs/governance.md#preview-statistics). Nothing here keeps or
returns an individual's value: the caller hands in the values and gets back a summary, or
nothing at all below the minimum number of sharers."""

from __future__ import annotations

import statistics
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from tortoise.exceptions import IntegrityError

from coop.governance.models import Proposal, StatisticsConsent
from coop.types import utcnow
from coop.vault.models import MemberKey

SAME = 0.05  # a change smaller than this (in score points) counts as "no change"


async def set_sharing(*, member_id: uuid.UUID, share: bool, now: datetime | None = None) -> bool:
    """Record the member's choice; True if it changed."""
    if not share:
        return bool(await StatisticsConsent.filter(member_id=member_id).delete())
    if await StatisticsConsent.exists(member_id=member_id):
        return False
    try:
        await StatisticsConsent.create(
            id=uuid.uuid4(), member_id=member_id, shared_at=now or utcnow()
        )
    except IntegrityError:  # a double submit
        return False
    return True


async def is_sharing(*, member_id: uuid.UUID) -> bool:
    return await StatisticsConsent.exists(member_id=member_id)


async def sharing_members() -> list[uuid.UUID]:
    """Members who chose to share and still hold a data key."""
    chose = await StatisticsConsent.all().values_list("member_id", flat=True)
    keyed = set(
        await MemberKey.filter(member_id__in=list(chose)).values_list("member_id", flat=True)
    )
    return sorted(uuid.UUID(str(m)) for m in keyed)


def summarise(values: Sequence[float], deltas: Sequence[float], *, minimum: int) -> dict[str, Any]:
    """What a proposal shows: the number of sharers, and only from `minimum` of them on, the
    mean would-be score and (for members who have a score now) how many would go
    up, down or stay, with the mean change. Rounded to one decimal. No median, minimum or
    maximum: each of those is some member's own value."""
    shown = len(values) >= minimum
    summary: dict[str, Any] = {"sharers": len(values), "minimum": minimum, "shown": shown}
    if not shown:
        return summary
    summary["mean"] = round(statistics.fmean(values), 1)
    if len(deltas) >= minimum:
        summary["compared"] = len(deltas)
        summary["up"] = sum(1 for d in deltas if d >= SAME)
        summary["down"] = sum(1 for d in deltas if d <= -SAME)
        summary["same"] = len(deltas) - summary["up"] - summary["down"]
        summary["mean_change"] = round(statistics.fmean(deltas), 1)
    return summary


async def store(
    *, proposal_id: uuid.UUID, summary: dict[str, Any], now: datetime | None = None
) -> None:
    await Proposal.filter(id=proposal_id).update(
        statistics={**summary, "computed_at": (now or utcnow()).isoformat()}
    )
