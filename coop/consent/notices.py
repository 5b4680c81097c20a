"""Score-change notices: when a new current score is stored, queue a signed notice for each
app that may read that score under a live grant and asked for notices. Queued here, sent by
the webhook worker (portability.notices), so scoring never waits on an app."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

from coop.types import utcnow

from .grants import ACTIVE, is_live
from .models import Grant, ScoreNotice

EVENT = "score.changed"
PENDING = "pending"


def notified_scopes(scopes: list[str], scorer: str) -> list[str]:
    """The grant's scopes that entitle it to notices about `scorer`: the exact value and the
    history. Disclosure-limited scopes (band, at least N) get none: a notice on every change
    of the value would tell the app more than the band or threshold it may see."""
    return [s for s in scopes if s in (f"score:{scorer}", f"score:{scorer}:history")]


def notice_body(
    *, notice_id: uuid.UUID, client_id: str, subject: str, scorer: str, at: datetime
) -> bytes:
    """No value: only which score changed and when. The app reads it under its grant."""
    return json.dumps(
        {
            "type": EVENT,
            "id": str(notice_id),
            "client_id": client_id,
            "subject": subject,
            "score": scorer,
            "changed_at": at.isoformat(),
            "action": "read the score through the API under your grant if you need it",
        },
        separators=(",", ":"),
    ).encode()


async def queue_score_changed(*, member_id: uuid.UUID, scorer: str, changed_at: datetime) -> int:
    """Queue a notice for every live grant of the member whose app asked for notices and may
    read `scorer` exactly; returns how many. Paused, revoked and expired grants get none."""
    now = utcnow()
    grants = await Grant.filter(member_id=member_id, status=ACTIVE).select_related("app")
    queued = 0
    for grant in grants:
        app = grant.app
        if not (app.score_notices and app.webhook_url):  # type: ignore[attr-defined]
            continue
        if not is_live(grant, now) or not notified_scopes(grant.scopes, scorer):
            continue
        notice_id = uuid.uuid4()
        await ScoreNotice.create(
            id=notice_id,
            grant_id=grant.id,
            app_id=grant.app_id,
            app_name=app.name,  # type: ignore[attr-defined]
            scorer=scorer,
            changed_at=changed_at,
            status=PENDING,
            next_attempt_at=now,
            body=notice_body(
                notice_id=notice_id,
                client_id=app.client_id,  # type: ignore[attr-defined]
                subject=grant.subject,
                scorer=scorer,
                at=changed_at,
            ),
        )
        queued += 1
    return queued


def still_entitled(notice: ScoreNotice, now: datetime) -> bool:
    """Checked right before each attempt: the grant is live and still covers the score (the
    notice's grant and its app must be loaded)."""
    grant = notice.grant
    return is_live(grant, now) and bool(notified_scopes(grant.scopes, notice.scorer))
