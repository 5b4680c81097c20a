"""Preview statistics for a proposal: the proposed scorer version runs in the sandbox on the
data of members who chose to share for this purpose, and only an aggregate is kept
(coop.governance.statistics). Nothing is stored per member; a failing run is left out."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from coop.errors import CoopError
from coop.governance import service as governance
from coop.governance import statistics
from coop.jobs.scoring import ScoringFlow, load_member_records
from coop.scoring import protocol
from coop.scoring import service as scoring
from coop.types import utcnow

log = logging.getLogger("coop.jobs.statistics")


async def preview_statistics(
    *, flow: ScoringFlow, proposal_id: uuid.UUID, minimum: int, now: datetime | None = None
) -> dict[str, object]:
    """Run the proposal's scorer version for every sharing member and store the summary
    (nothing but the number of sharers below `minimum`). A retirement has none."""
    now = now or utcnow()
    proposal = await governance.get_proposal(proposal_id=proposal_id)
    if proposal.kind == governance.RETIRE:
        return {}
    meta = await flow.meta(proposal.scorer)
    if meta.version != proposal.version:
        return {}  # another version is installed now: it is not what members vote on
    values: list[float] = []
    deltas: list[float] = []
    for member_id in await statistics.sharing_members():
        try:
            records = await load_member_records(
                vault=flow.vault, member_id=member_id, kinds=meta.reads
            )
            listed, _ = scoring.input_records(vault=flow.vault, meta=meta, records=records)
            result = await flow.runner.run(
                scorer=meta.name, records=protocol.EncodedRecords(listed), now=now
            )
        except CoopError as exc:
            log.warning("preview for statistics failed", extra={"code": exc.code})
            continue
        values.append(result.value)
        current = await scoring.latest_value(member_id=member_id, scorer=meta.name)
        if current is not None and current[1] != meta.version:
            deltas.append(result.value - current[0])
    summary = statistics.summarise(values, deltas, minimum=minimum)
    await statistics.store(proposal_id=proposal_id, summary=summary, now=now)
    return summary
