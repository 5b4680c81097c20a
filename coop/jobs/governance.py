"""Closing votes and applying their outcome to members' scores (governance meets scoring).

The governance domain records the outcome and the approvals; here a rejected upgrade or an
approved retirement labels every affected member's last score at once (it stays, frozen,
with the reason), the way a version a member did not accept is labelled (#13).
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from coop.errors import VotingClosedError
from coop.governance import service as governance
from coop.governance.rules import APPROVED
from coop.scoring import versions

log = logging.getLogger("coop.jobs.governance")


def held_reason(title: str, version: str, reason: str) -> str:
    """Why a member's score is frozen while the cooperative does not offer `version`."""
    if reason == "retired":
        return (
            f"The cooperative voted to retire {title}. This is your last score from it; "
            "it is no longer computed."
        )
    if reason == "rejected":
        return (
            f"The cooperative did not approve version {version} of {title}. This score stays "
            "as the previous version left it until the operator reinstalls that version."
        )
    return (
        f"Version {version} of {title} waits for the cooperative's vote. Until the members "
        "approve it, this score stays as the previous version left it."
    )


async def close_proposal(
    *, proposal_id: uuid.UUID, now: datetime | None = None
) -> governance.ProposalView:
    """Close one proposal whose voting period is over and apply its outcome."""
    closed = await governance.close_proposal(proposal_id=proposal_id, now=now)
    if closed.kind == governance.RETIRE and closed.outcome == APPROVED:
        await versions.label_all(
            scorer=closed.scorer, reason=held_reason(closed.title, closed.version, "retired")
        )
    elif closed.kind == governance.UPGRADE and closed.outcome != APPROVED:
        await versions.label_all(
            scorer=closed.scorer, reason=held_reason(closed.title, closed.version, "rejected")
        )
    log.info(
        "proposal closed",
        extra={"proposal": str(closed.id), "outcome": closed.outcome, "kind": closed.kind},
    )
    return closed


async def close_due(*, now: datetime | None = None) -> list[governance.ProposalView]:
    """Close every proposal whose voting period is over (the housekeeping job runs this)."""
    closed = []
    for proposal_id in await governance.due_proposals(now=now):
        try:
            closed.append(await close_proposal(proposal_id=proposal_id, now=now))
        except VotingClosedError:
            continue  # another process closed it first
    return closed
