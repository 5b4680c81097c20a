"""Small shared value types, the clock and `together` (a leaf: imports nothing of coop)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime, timedelta
from typing import NewType, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")

MemberId = NewType("MemberId", uuid.UUID)


class Clock:
    """The wall clock coop reads. Tests shift it (`clock.advance(seconds)`) instead of sleeping,
    and may stop it (`clock.freeze()`) so that no real time passes between two readings."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.stopped_at: datetime | None = None

    def now(self) -> datetime:
        base = datetime.now(UTC) if self.stopped_at is None else self.stopped_at
        return base + timedelta(seconds=self.offset)

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def freeze(self) -> None:
        """Stop at the present instant: from now on only `advance` moves the clock."""
        self.stopped_at = datetime.now(UTC)

    def reset(self) -> None:
        self.offset = 0.0
        self.stopped_at = None


clock = Clock()


def is_web_url(value: object) -> bool:
    """Whether `value` is an absolute http(s) URL with a host and no whitespace or control
    characters: the only kind of URL from a plugin, a connector or an app that coop turns into
    a link (never `javascript:`, `data:` or a scheme-relative `//host`)."""
    if not isinstance(value, str) or not value or len(value) > 2048:
        return False
    if any(ord(c) <= 0x20 or 0x7F <= ord(c) <= 0x9F for c in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and "\\" not in value


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
