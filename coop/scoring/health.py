"""How scorers behave at run time, for the operator: per scorer and hour, how many runs, how
many failed (and how the last one failed), and which kinds the runs received. No member data:
counts, error codes and where in the plugin it failed. `coop plugins list` reads the last 24
hours from a few rows per scorer (an index on the hour), never from the members' tables."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import PurePosixPath

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F

from coop.errors import ScorerError
from coop.scoring.models import ScorerRuns
from coop.types import utcnow

log = logging.getLogger("coop.scoring")

RECENT = timedelta(hours=24)  # what `coop plugins list` calls recent
KEEP = timedelta(days=7)  # older hours are deleted when a scorer starts a new hour
LOG_EVERY = 3600.0  # seconds between two log lines about the same scorer's unfed kinds
ALL = ""  # the `kind` of the row that counts every run


@dataclass(frozen=True)
class Health:
    """One scorer's runs in the recent window."""

    scorer: str
    runs: int = 0
    failures: int = 0
    last_failure_at: datetime | None = None
    last_failure: str = ""
    last_failure_version: str = ""
    fed: dict[str, int] = field(default_factory=dict)  # kind -> runs that received it

    def unfed(self, reads: Sequence[str]) -> list[str]:
        """Kinds the scorer reads that none of its recent runs received."""
        if not self.runs:
            return []
        return [kind for kind in reads if not self.fed.get(kind)]

    def failure_line(self) -> str:
        when = f"{self.last_failure_at:%Y-%m-%d %H:%M} UTC" if self.last_failure_at else "?"
        version = f", version {self.last_failure_version}" if self.last_failure_version else ""
        return (
            f"FAILING: {self.failures} of {self.runs} runs in the last 24 h failed; "
            f"last at {when}: {self.last_failure}{version}"
        )

    def unfed_lines(self, reads: Sequence[str]) -> list[str]:
        return [
            f"WARNING: reads {kind} records but none of its {self.runs} runs in the last 24 h "
            "received any (it scores without them)"
            for kind in self.unfed(reads)
        ]


def describe(error: ScorerError) -> str:
    """The code and where the plugin failed (type, file, line, function), never the message."""
    failure = error.failure or {}
    if not failure:
        return error.code
    where = ""
    frames = failure.get("frames") or []
    if frames:
        file, line, function = frames[-1][0], frames[-1][1], frames[-1][2]
        short = "/".join(PurePosixPath(str(file)).parts[-2:])
        where = f" at {short}:{line} in {function}"
    return f"{error.code}: raised {failure.get('type', 'an error')}{where}"[:300]


def _hour(now: datetime) -> datetime:
    return now.replace(minute=0, second=0, microsecond=0)


async def _count(scorer: str, hour: datetime, kinds: list[str]) -> None:
    """runs += 1 on each (scorer, hour, kind) row, creating the rows an hour lacks."""
    rows = ScorerRuns.filter(scorer=scorer, hour=hour, kind__in=kinds)
    if await rows.update(runs=F("runs") + 1) == len(kinds):
        return
    have = {str(kind) for kind in await rows.values_list("kind", flat=True)}
    for kind in kinds:
        if kind in have:
            continue
        try:
            await ScorerRuns.create(id=uuid.uuid4(), scorer=scorer, hour=hour, kind=kind, runs=1)
        except IntegrityError:  # another run created it first
            await ScorerRuns.filter(scorer=scorer, hour=hour, kind=kind).update(runs=F("runs") + 1)
    if ALL not in have:  # the scorer's first run this hour: forget old hours
        await ScorerRuns.filter(hour__lt=hour - KEEP).delete()


async def record_run(
    *,
    scorer: str,
    version: str,
    kinds_given: Iterable[str],
    error: ScorerError | None = None,
    now: datetime | None = None,
) -> None:
    """Count one run of `scorer`: the kinds it received, and how it failed (if it did).
    Call it outside any transaction (a lost race to create a row is retried)."""
    now = now or utcnow()
    hour = _hour(now)
    await _count(scorer, hour, [ALL, *sorted(set(kinds_given))])
    if error is not None:
        await ScorerRuns.filter(scorer=scorer, hour=hour, kind=ALL).update(
            failures=F("failures") + 1,
            last_failure_at=now,
            last_failure=describe(error),
            last_failure_version=version[:64],
        )


async def recent(*, now: datetime | None = None) -> dict[str, Health]:
    """Every scorer's runs in the last 24 hours."""
    since = _hour((now or utcnow()) - RECENT)
    rows = await ScorerRuns.filter(hour__gte=since).order_by("hour")
    found: dict[str, Health] = {}
    for row in rows:
        health = found.setdefault(row.scorer, Health(row.scorer))
        if row.kind != ALL:
            health.fed[row.kind] = health.fed.get(row.kind, 0) + row.runs
            continue
        last = row.last_failure_at if row.failures else None
        found[row.scorer] = Health(
            scorer=row.scorer,
            runs=health.runs + row.runs,
            failures=health.failures + row.failures,
            last_failure_at=last or health.last_failure_at,
            last_failure=row.last_failure if last else health.last_failure,
            last_failure_version=row.last_failure_version if last else health.last_failure_version,
            fed=health.fed,
        )
    return found


class UnfedLog:
    """Logs that a scorer received no records of a kind it reads, at most once an hour per
    scorer and kinds in this process (a member without that source is common: one line, not
    one per member). No member data: the scorer and the kinds."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, tuple[str, ...]], float] = {}

    def warn(self, scorer: str, kinds: Sequence[str]) -> None:
        key = (scorer, tuple(kinds))
        moment = time.monotonic()
        if moment - self._last.get(key, -LOG_EVERY) < LOG_EVERY:
            return
        self._last[key] = moment
        log.warning(
            "scorer received no records of kinds it reads",
            extra={"plugin": scorer, "kinds": list(kinds)},
        )


unfed_log = UnfedLog()
