"""The periodic scheduler: claims connections whose next sync is due and queues their runs."""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress

from coop.connectors import store
from coop.jobs.engine import SyncEngine
from coop.jobs.queue import JobQueue
from coop.types import utcnow

log = logging.getLogger("coop.jobs.scheduler")


class Scheduler:
    """Every `tick_seconds`, claim up to `batch` due connections and submit one run each."""

    def __init__(
        self, engine: SyncEngine, queue: JobQueue, *, tick_seconds: float = 60.0, batch: int = 20
    ) -> None:
        self.engine = engine
        self.queue = queue
        self.tick_seconds = tick_seconds
        self.batch = batch
        self._task: asyncio.Task[None] | None = None

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

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # e.g. the database is restarting: try again next tick
                log.warning("scheduler tick failed", extra={"error": type(exc).__name__})
            await asyncio.sleep(self.tick_seconds)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None


__all__ = ["Scheduler"]
