"""Small shared value types and the clock (a leaf: imports nothing of coop)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import NewType

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
