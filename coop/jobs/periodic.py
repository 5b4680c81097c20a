"""A task that repeats: one round now, then one every `interval` seconds, until stopped."""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress

log = logging.getLogger("coop.jobs")


class Periodic:
    """Subclasses implement `round`. A round that raises is logged (at WARNING, with the
    error's type only) and the next one runs as planned: a database restarting must not end
    the background work for good."""

    name = "periodic"

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    async def round(self) -> object:
        raise NotImplementedError

    async def _loop(self) -> None:
        while True:
            try:
                await self.round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("%s round failed", self.name, extra={"error": type(exc).__name__})
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None


__all__ = ["Periodic"]
