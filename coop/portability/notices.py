"""Delivering score-change notices (queued by consent.notices when a score changes): signed
and retried exactly like the deletion notices (portability.webhooks), re-checked against the
grant right before each attempt, and written to the member's access log as "notified"."""

from __future__ import annotations

import logging

from coop.config import Settings
from coop.consent import accesslog
from coop.consent.models import ScoreNotice
from coop.consent.notices import PENDING, still_entitled
from coop.portability import webhooks
from coop.portability.models import DELIVERY_DELIVERED, DELIVERY_FAILED
from coop.types import utcnow
from coop.vault import Vault

log = logging.getLogger("coop.portability.notices")

NOT_ENTITLED = "grant_not_live"


def notified_resource(scorer: str) -> str:
    """What the member's access log says for a delivered notice."""
    return f"notified: {scorer} score changed"


async def _drop(notice: ScoreNotice) -> None:
    """The grant was paused, revoked, narrowed or expired since: never send this notice."""
    await ScoreNotice.filter(id=notice.id, status=PENDING).update(
        status=DELIVERY_FAILED, last_error=NOT_ENTITLED, body=None, next_attempt_at=None
    )
    log.info("score notice dropped", extra={"delivery": str(notice.id), "code": NOT_ENTITLED})


async def _log_delivered(notice: ScoreNotice) -> None:
    grant = notice.grant
    await accesslog.record(
        member_id=grant.member_id,
        scope=f"score:{notice.scorer}",
        resource=notified_resource(notice.scorer),
        app_name=notice.app_name,
        grant_id=grant.id,
        app_id=notice.app_id,
        at=notice.delivered_at,
    )


async def deliver_due_notices(settings: Settings, vault: Vault, *, limit: int = 50) -> int:
    """One attempt for each pending notice whose time has come (a job the webhook worker
    runs next to the deletion notices). Returns how many were taken up."""
    now = utcnow()
    due = (
        await ScoreNotice.filter(status=PENDING, next_attempt_at__lte=now)
        .select_related("grant", "grant__app")
        .order_by("next_attempt_at")
        .limit(limit)
    )
    entitled = [n for n in due if still_entitled(n, now)]
    keep = {n.id for n in entitled}
    for notice in due:
        if notice.id not in keep:
            await _drop(notice)
    await webhooks.deliver(settings, vault, entitled)
    for notice in entitled:
        if notice.status == DELIVERY_DELIVERED:
            await _log_delivered(notice)
    return len(due)
