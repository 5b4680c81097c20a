"""One process of several sharing a data folder runs the embedded default's background work.

`coop serve --workers N` on SQLite starts N web processes on one `COOP_DATA_DIR`. The
scheduler, housekeeping and notice deliveries must run in one of them only: two notice
workers would send the same notice twice. The process that holds an exclusive lock on
`DATA_DIR/jobs.lock` runs them; the others try again every few seconds, so that when the
holder stops or dies (the kernel drops its lock at once, even after kill -9) another one
takes over. On PostgreSQL the shared queue decides instead (coop.jobs.pgqueue).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

log = logging.getLogger("coop.jobs")

LOCK_NAME = "jobs.lock"
RETRY_SECONDS = 5.0


class JobsLock:
    """An exclusive, non-blocking `flock` on one file; released when the process ends."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor releases the flock
            self._fd = None


class Leader:
    """Runs `start` once this process holds the lock: at once, or when the holder goes."""

    def __init__(
        self,
        lock: JobsLock,
        start: Callable[[], Awaitable[None]],
        *,
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        self.lock = lock
        self._start = start
        self.retry_seconds = retry_seconds
        self._task: asyncio.Task[None] | None = None

    async def begin(self) -> None:
        if self.lock.try_acquire():
            log.info("background jobs run in this process", extra={"pid": os.getpid()})
            await self._start()
            return
        log.info(
            "background jobs run in another process on this data folder; this one takes "
            "over if that one stops",
            extra={"pid": os.getpid()},
        )
        self._task = asyncio.get_running_loop().create_task(self._standby(), name="jobs-standby")

    async def _standby(self) -> None:
        while True:  # polling: the lock holder may be another process, nothing to wait on
            if self.lock.try_acquire():
                break
            await asyncio.sleep(self.retry_seconds)
        log.info("background jobs taken over by this process", extra={"pid": os.getpid()})
        await self._start()

    async def stop(self) -> None:
        """Stop waiting for the lock (the caller releases it once the work has stopped)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


def lock_for(data_dir: Path) -> JobsLock:
    return JobsLock(data_dir / LOCK_NAME)


PROCESSES_NAME = "processes.lock"


class ProcessesLock:
    """Every process serving a data folder holds a shared `flock` on
    `DATA_DIR/processes.lock` while it lives (the kernel drops it at exit, kill -9 too).

    `join(recover)` runs `recover` only when no other process holds it (an exclusive lock is
    granted): every in-process run state then found in the database (queued, syncing) was
    left by processes that are gone. The shared lock is taken after `recover` has finished,
    so a process starting at the same moment waits for it before serving."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    async def join(self, recover: Callable[[], Awaitable[object]]) -> bool:
        """Join the processes of this folder; True if this one was alone and recovered."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        self._fd = fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            alone = False
        else:
            alone = True
            await recover()
        # Converting (or waiting for a starting process's recovery to end): not on the loop.
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_SH)
        return alone

    async def attend(self) -> None:
        """Join without ever recovering (a CLI command, which may claim runs of its own but
        cannot tell whether other processes are gone): a process starting meanwhile is then
        not alone and releases nothing; one recovering now is waited for."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        self._fd = fd
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_SH)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def processes_lock_for(data_dir: Path) -> ProcessesLock:
    return ProcessesLock(data_dir / PROCESSES_NAME)


__all__ = [
    "LOCK_NAME",
    "PROCESSES_NAME",
    "JobsLock",
    "Leader",
    "ProcessesLock",
    "lock_for",
    "processes_lock_for",
]
