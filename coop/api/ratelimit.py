"""Per-client rate limiting: a token bucket per (app, member), in process memory.

`limit` requests per minute refill continuously; a client may burst up to `limit`. The
embedded default runs one worker, so process memory is the right place; a scale-out
deployment would back this with a shared store behind the same interface.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

MAX_KEYS = 100_000


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # until the bucket is full again
    retry_after: int  # until the next request would be allowed (0 when allowed)

    def headers(self) -> list[tuple[bytes, bytes]]:
        out = [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(self.remaining).encode()),
            (b"x-ratelimit-reset", str(self.reset_seconds).encode()),
        ]
        if not self.allowed:
            out.append((b"retry-after", str(self.retry_after).encode()))
        return out


class RateLimiter:
    """`limit` requests per minute per key; `limit == 0` turns limiting off."""

    def __init__(self, limit: int, *, now: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.rate = limit / 60.0
        self._now = now
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    def hit(self, key: str, cost: float = 1.0) -> Decision:
        now = self._now()
        tokens, last = self._buckets.pop(key, (float(self.limit), now))
        tokens = min(float(self.limit), tokens + (now - last) * self.rate)
        allowed = tokens >= cost
        if allowed:
            tokens -= cost
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > MAX_KEYS:
            self._buckets.popitem(last=False)  # least recently seen
        missing = self.limit - tokens
        return Decision(
            allowed=allowed,
            limit=self.limit,
            remaining=max(0, math.floor(tokens)),
            reset_seconds=math.ceil(missing / self.rate) if missing > 0 else 0,
            retry_after=0 if allowed else max(1, math.ceil((cost - tokens) / self.rate)),
        )
