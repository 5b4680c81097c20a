"""The periodic scheduler: claims connections whose next sync is due and queues their runs."""

from __future__ import annotations

from coop.connectors import store
from coop.jobs.engine import SyncEngine
from coop.jobs.periodic import Periodic
from coop.jobs.queue import JobQueue
from coop.types import utcnow


class Scheduler(Periodic):
    """Every `tick_seconds`, claim up to `batch` due connections and submit one run each."""

    name = "scheduler"

    def __init__(
        self, engine: SyncEngine, queue: JobQueue, *, tick_seconds: float = 60.0, batch: int = 20
    ) -> None:
        super().__init__(tick_seconds)
        self.engine = engine
        self.queue = queue
        self.batch = batch

    async def tick(self) -> int:
        """Queue every due connection once; returns how many were queued."""
        queued = 0
        for connection_id in await store.due_connections(now=utcnow(), limit=self.batch):
            claimed = await self.engine.try_claim(connection_id)
            if claimed is None:  # a "sync now" got there first
                continue
            self.engine.queue_run(self.queue, claimed)
            queued += 1
        return queued

    async def round(self) -> object:
        return await self.tick()


__all__ = ["Scheduler"]
