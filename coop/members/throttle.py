"""Login rate limiting: failed attempts per blind-indexed email and per client address."""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F

from coop.config import Settings
from coop.errors import RateLimitedError
from coop.members.models import LoginThrottle
from coop.types import utcnow
from coop.vault import Vault

log = logging.getLogger("coop.members")


def throttle_keys(*, vault: Vault, email_index: str, client_address: str) -> list[str]:
    # Client addresses are personal data too: only their keyed hash is stored.
    return [
        f"email:{email_index}",
        f"addr:{vault.blind_index(client_address, purpose='login-address')}",
    ]


def _seconds_left(row: LoginThrottle, settings: Settings, now: datetime) -> int:
    """How long `row`'s key stays refused: 0 unless it used up its failures in a window that
    has not ended yet."""
    ends = row.window_start + timedelta(seconds=settings.login_window_seconds)
    if ends > now and row.failures >= settings.login_attempts_per_window:
        return math.ceil((ends - now).total_seconds())
    return 0


async def check(*, settings: Settings, keys: list[str]) -> None:
    """Raise RateLimitedError when any key has used up its failures for the current window."""
    now = utcnow()
    retry_after = 0
    for row in await LoginThrottle.filter(key__in=keys):
        retry_after = max(retry_after, _seconds_left(row, settings, now))
    if retry_after:
        minutes = max(1, math.ceil(retry_after / 60))
        unit = "minute" if minutes == 1 else "minutes"
        log.warning(
            "login rate limited", extra={"code": "rate_limited", "retry_after": retry_after}
        )
        raise RateLimitedError(
            f"Too many login attempts. Try again in {minutes} {unit}.", retry_after=retry_after
        )


async def used_up(*, settings: Settings, key: str) -> bool:
    """Whether `key` has used up its failures for the current window."""
    row = await LoginThrottle.get_or_none(key=key)
    return row is not None and _seconds_left(row, settings, utcnow()) > 0


async def record_failure(*, settings: Settings, keys: list[str]) -> None:
    now = utcnow()
    window = timedelta(seconds=settings.login_window_seconds)
    window_start_before = now - window
    # Counters of windows long gone are dead weight (and a trail of who tried): drop them.
    await LoginThrottle.filter(window_start__lt=now - 2 * window).delete()
    for key in keys:
        # A window that has ended starts over; otherwise count atomically (concurrent misses).
        await LoginThrottle.filter(key=key, window_start__lte=window_start_before).update(
            window_start=now, failures=0
        )
        updated = await LoginThrottle.filter(key=key).update(failures=F("failures") + 1)
        if not updated:
            try:
                await LoginThrottle.create(key=key, window_start=now, failures=1)
            except IntegrityError:  # another request created it first
                await LoginThrottle.filter(key=key).update(failures=F("failures") + 1)


async def clear(*, key: str) -> None:
    await LoginThrottle.filter(key=key).delete()
