"""The job interface, and its in-process implementation for the embedded default.

`JobQueue` is what the rest of coop depends on; `InProcessQueue` runs jobs as asyncio tasks
in the server's event loop with bounded concurrency. A scale-out deployment can back the same
interface with a real queue (jobs are named, take no hidden state and are idempotent).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

log = logging.getLogger("coop.jobs")

Job = Callable[[], Awaitable[object]]


class JobQueue(Protocol):
    def submit(self, name: str, job: Job) -> None:
        """Run `job` soon. It must be safe to run again after a crash (idempotent)."""
        ...

    async def drain(self) -> None:
        """Wait until every submitted job has finished (tests, graceful shutdown)."""
        ...

    async def close(self) -> None:
        """Stop accepting jobs and cancel the ones still running."""
        ...


class InProcessQueue:
    """asyncio tasks with at most `concurrency` jobs running at once."""

    def __init__(self, concurrency: int = 4) -> None:
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def submit(self, name: str, job: Job) -> None:
        if self._closed:
            raise RuntimeError("the job queue is closed")
        task = asyncio.get_running_loop().create_task(self._run(name, job), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, name: str, job: Job) -> None:
        async with self._slots:
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one failing job never stops the others
                log.error("job failed", extra={"job": name, "error": type(exc).__name__})

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)


__all__ = ["InProcessQueue", "Job", "JobQueue"]
