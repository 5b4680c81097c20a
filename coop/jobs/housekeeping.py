"""Housekeeping: the periodic clean-up that keeps tables from growing with time alone.

Once at start and then every hour, in the server process that runs the scheduler
(`COOP_SCHEDULER`), it

- purges authorization codes and token rows that can never be valid again, 30 days after
  they ended (`consent.service.purge_stale_tokens`: kept that long so a late replay is still
  recognised and revokes its family);
- records `expired` for grants past their end (`consent.service.expire_due_grants`; token
  checks refuse them already, this makes the grant's history and status say so);
- deletes web sessions past their idle or absolute timeout
  (`members.sessions.purge_expired`);
- deletes idle rate-limit buckets (PostgreSQL; `consent.ratelimit.purge_idle`);
- deletes access-log rows past `COOP_ACCESS_LOG_RETENTION_DAYS`
  (`consent.service.purge_access_log`);
- closes proposals whose voting period is over and applies their outcome
  (`jobs.governance.close_due`, docs/governance.md).

Each step runs in its own transaction; a failing step is logged and retried next round, and
does not stop the others.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from coop.config import Settings
from coop.consent import ratelimit
from coop.consent import service as consent
from coop.jobs import governance
from coop.jobs.periodic import Periodic
from coop.members import sessions

log = logging.getLogger("coop.jobs.housekeeping")

INTERVAL_SECONDS = 3600.0


async def _close_due_proposals() -> int:
    return len(await governance.close_due())


class Housekeeping(Periodic):
    """Runs `steps` now and then every `interval` seconds until stopped."""

    name = "housekeeping"

    def __init__(self, settings: Settings, *, interval: float = INTERVAL_SECONDS) -> None:
        super().__init__(interval)
        self.steps: dict[str, Callable[[], Awaitable[int]]] = {
            "oauth": consent.purge_stale_tokens,  # codes and token rows
            "grants": consent.expire_due_grants,
            "sessions": lambda: sessions.purge_expired(settings=settings),
            "rate_limits": ratelimit.purge_idle,
            "access_log": lambda: consent.purge_access_log(days=settings.access_log_retention_days),
            "proposals": _close_due_proposals,
        }

    async def run_once(self) -> dict[str, int | None]:
        """Run every step; returns how many rows each one handled (None: it failed)."""
        done: dict[str, int | None] = {}
        for name, step in self.steps.items():
            try:
                done[name] = await step()
            except Exception as exc:  # e.g. the database is restarting: next round
                log.warning(
                    "housekeeping step failed", extra={"step": name, "error": type(exc).__name__}
                )
                done[name] = None
        if any(done.values()):
            log.info("housekeeping", extra={f"{name}_rows": n for name, n in done.items()})
        return done

    async def round(self) -> object:
        return await self.run_once()


__all__ = ["INTERVAL_SECONDS", "Housekeeping"]
