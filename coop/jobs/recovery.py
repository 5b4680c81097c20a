"""On the embedded default (SQLite), runs are queued and run in the process that took them:
one that dies (kill -9, power loss) leaves its connections `syncing` and its scorers
`queued`, with nobody left to finish them. The first process to start on the data folder
while no other one lives (coop.jobs.leader.ProcessesLock) hands them back: a sync can be
started again at once ("Sync now", the scheduler), and a queued score says that it was
interrupted and can be recomputed. On PostgreSQL the shared queue retries instead."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from coop.connectors import store
from coop.scoring import service as scoring
from coop.types import utcnow

log = logging.getLogger("coop.jobs")


@dataclass(frozen=True)
class Recovered:
    connections: int
    scorers: int


async def recover_interrupted() -> Recovered:
    """Release every in-process run state: only call it when no process can own one."""
    now = utcnow()
    found = Recovered(
        connections=await store.release_interrupted(now=now),
        scorers=await scoring.mark_interrupted(now=now),
    )
    if found.connections or found.scorers:
        log.warning(
            "runs interrupted by a stopped process were released",
            extra={
                "code": "runs_interrupted",
                "connections": found.connections,
                "scorers": found.scorers,
            },
        )
    return found
