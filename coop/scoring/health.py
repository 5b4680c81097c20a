"""How scorers behave at run time, for the operator: per scorer and hour, how many runs, how
many failed (and how the last one failed), and which kinds the runs received. No member data:
counts, error codes and where in the plugin it failed. `coop plugins list` reads the last 24
hours from a few rows per scorer and database session (an index on the hour), never from the
members' tables."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import PurePosixPath

from tortoise import connections

from coop import db
from coop.errors import ScorerError
from coop.scoring.models import ScorerRunCounts
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


# One statement counts a run in the calling session's own rows (`shard`), creating them the
# first time: no other session ever writes them, so many workers recording runs of one
# scorer at once never wait on a row lock (they did on one shared row per scorer and hour).
# Only the row of kind ALL carries a failure. `excluded` is the row this run would insert.
_UPSERT = """
INSERT INTO scorer_run_counts
    (id, scorer, hour, kind, shard, runs, failures, last_failure_at, last_failure,
     last_failure_version)
VALUES {values}
ON CONFLICT (scorer, hour, kind, shard) DO UPDATE SET
    runs = scorer_run_counts.runs + 1,
    failures = scorer_run_counts.failures + excluded.failures,
    last_failure_at = CASE WHEN excluded.failures > 0
        THEN excluded.last_failure_at ELSE scorer_run_counts.last_failure_at END,
    last_failure = CASE WHEN excluded.failures > 0
        THEN excluded.last_failure ELSE scorer_run_counts.last_failure END,
    last_failure_version = CASE WHEN excluded.failures > 0
        THEN excluded.last_failure_version ELSE scorer_run_counts.last_failure_version END
RETURNING kind, runs
"""
_COLUMNS = 10


def _upsert(rows: int) -> str:
    """The statement for `rows` rows, with the dialect's markers and session id."""
    shard = "pg_backend_pid()" if db.db_kind() == "postgres" else "0"
    marks = []
    for row in range(rows):
        first = row * (_COLUMNS - 1) + 1
        given = [db.placeholder(first + i) for i in range(_COLUMNS - 1)]
        marks.append(f"({', '.join(given[:4])}, {shard}, {', '.join(given[4:])})")
    return _UPSERT.format(values=", ".join(marks))


def _db_time(value: datetime | None) -> object:
    field = ScorerRunCounts._meta.fields_map["hour"]
    return None if value is None else field.to_db_value(value, ScorerRunCounts)


async def record_run(
    *,
    scorer: str,
    version: str,
    kinds_given: Iterable[str],
    error: ScorerError | None = None,
    now: datetime | None = None,
) -> None:
    """Count one run of `scorer`: the kinds it received, and how it failed (if it did).
    One statement; call it outside any transaction (its rows stay locked until the end)."""
    now = now or utcnow()
    hour = _db_time(_hour(now))
    failure = (
        (1, _db_time(now), describe(error), version[:64])
        if error is not None
        else (0, None, "", "")
    )
    params: list[object] = []
    for kind in [ALL, *sorted(set(kinds_given))]:
        failed = failure if kind == ALL else (0, None, "", "")
        params += [str(uuid.uuid4()), scorer, hour, kind, 1, *failed]
    sql = _upsert(len(params) // (_COLUMNS - 1))
    counted = await connections.get("default").execute_query_dict(sql, params)
    if any(row["kind"] == ALL and row["runs"] == 1 for row in counted):
        # This session's first run of the scorer this hour: forget hours past the week.
        await ScorerRunCounts.filter(hour__lt=_hour(now) - KEEP).delete()


@dataclass
class _Sum:
    runs: int = 0
    failures: int = 0
    last_failure_at: datetime | None = None
    last_failure: str = ""
    last_failure_version: str = ""
    fed: dict[str, int] = field(default_factory=dict)

    def add(self, row: ScorerRunCounts) -> None:
        if row.kind != ALL:
            self.fed[row.kind] = self.fed.get(row.kind, 0) + row.runs
            return
        self.runs += row.runs
        self.failures += row.failures
        at = row.last_failure_at
        if (
            row.failures
            and at is not None
            and (self.last_failure_at is None or at > self.last_failure_at)
        ):
            self.last_failure_at = at
            self.last_failure = row.last_failure
            self.last_failure_version = row.last_failure_version


async def recent(*, now: datetime | None = None) -> dict[str, Health]:
    """Every scorer's runs in the last 24 hours (every session's rows summed)."""
    since = _hour((now or utcnow()) - RECENT)
    sums: dict[str, _Sum] = {}
    for row in await ScorerRunCounts.filter(hour__gte=since):
        sums.setdefault(row.scorer, _Sum()).add(row)
    return {
        scorer: Health(
            scorer=scorer,
            runs=total.runs,
            failures=total.failures,
            last_failure_at=total.last_failure_at,
            last_failure=total.last_failure,
            last_failure_version=total.last_failure_version,
            fed=total.fed,
        )
        for scorer, total in sums.items()
    }


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
