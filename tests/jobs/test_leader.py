"""One process of several on a data folder runs the background jobs (coop.jobs.leader): the
holder of the folder's jobs lock; another takes over once the holder lets go."""

from __future__ import annotations

import asyncio
from pathlib import Path

from coop.jobs.leader import Leader, lock_for


async def test_only_the_lock_holder_starts_and_a_standby_takes_over_when_it_lets_go(
    tmp_path: Path,
) -> None:
    started: list[str] = []

    def starter(name: str) -> Leader:
        async def start() -> None:
            started.append(name)

        return Leader(lock_for(tmp_path), start, retry_seconds=0.02)

    first, second = starter("first"), starter("second")
    await first.begin()
    await second.begin()
    await asyncio.sleep(0.1)
    assert started == ["first"]
    first.lock.release()  # the holder stops (or dies: the kernel drops its lock)
    for _ in range(200):
        if len(started) == 2:
            break
        await asyncio.sleep(0.02)
    assert started == ["first", "second"]
    assert second.lock.held
    await second.stop()
    second.lock.release()
    await first.stop()
