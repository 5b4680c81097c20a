"""Small shared value types, the clock and `together` (a leaf: imports nothing of coop)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime, timedelta
from typing import NewType, TypeVar

T = TypeVar("T")

MemberId = NewType("MemberId", uuid.UUID)


class Clock:
    """The wall clock coop reads. Tests shift it (`clock.advance(seconds)`) instead of sleeping."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.offset)

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def reset(self) -> None:
        self.offset = 0.0


clock = Clock()


def utcnow() -> datetime:
    """Now, timezone-aware UTC, as seen through the shiftable clock."""
    return clock.now()


async def together(awaitables: Sequence[Awaitable[T]]) -> list[T]:
    """Await all of `awaitables` concurrently, results in order (asyncio.gather), except that
    a single one is simply awaited: gather would wrap it in a task and cost a loop turn, on
    the API's hot read where there usually is just one."""
    if len(awaitables) == 1:
        return [await awaitables[0]]
    return list(await asyncio.gather(*awaitables))
