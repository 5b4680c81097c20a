"""Background jobs on PostgreSQL: procrastinate (a PostgreSQL-backed queue) runs every job.

The same job functions as the embedded default, run by whichever worker takes them:

- `coop.sync`: one claimed sync run (`SyncEngine.run_claimed`). Web processes claim the
  connection (so "Sync now" answers "already running" at once) and defer the run; the
  scheduler does the same for due connections. A re-run continues from the last committed
  cursor (SY-02), so a job retried after a crash does nothing twice.
- `coop.score`: rescore one member (deferred after each sync, and by Enable, Recompute and
  Accept in the member's pages; one pending job per member). One that raises records
  `job_failed` on the scores still queued and ends (ScoringFlow.rescore_job): no retry.
- periodic: `coop.schedule` (due connections, every 15 s), `coop.webhooks` (due deletion
  notices, every 15 s), `coop.housekeeping` (hourly), `coop.recover` (every 30 s: jobs whose
  worker stopped sending heartbeats, e.g. killed with -9, are retried).

A member erased while a job is queued or running: the job finds no key and stops at its
next step without writing (ER-07).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import procrastinate
from procrastinate import exceptions as procrastinate_errors
from procrastinate.jobs import Status

from coop.config import Settings
from coop.connectors import store
from coop.db import QUEUE_MEMBER_INDEX
from coop.jobs.engine import SyncEngine, SyncOutcome
from coop.jobs.housekeeping import Housekeeping
from coop.jobs.scoring import ScoringFlow
from coop.vault import Vault

log = logging.getLogger("coop.jobs.queue")

SCHEDULE_BATCH = 500  # connections claimed per scheduler pass (several passes per tick)
HEARTBEAT_SECONDS = 5.0
STALLED_SECONDS = 20.0


def conninfo(settings: Settings) -> str:
    """The libpq connection string for procrastinate (psycopg) from COOP_DATABASE_URL."""
    url = settings.database_url
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    parts = urlsplit(url)
    joiner = "&" if parts.query else "?"
    return f"{url}{joiner}connect_timeout={max(1, int(settings.db_connect_timeout))}"


@dataclass
class Workload:
    """What the job functions run with, in the process that runs them."""

    settings: Settings
    vault: Vault
    engine: SyncEngine
    flow: ScoringFlow | None = None
    # Delivers due deletion notices (portability.webhooks.deliver_due), composed by the caller.
    notices: Callable[[], Awaitable[int]] | None = None


def build(settings: Settings) -> procrastinate.App:
    """The procrastinate app with coop's tasks (web processes defer, workers run)."""
    connector = procrastinate.PsycopgConnector(
        conninfo=conninfo(settings), kwargs={"application_name": "coop-jobs"}, max_size=4
    )
    app = procrastinate.App(connector=connector)
    _register(app)
    return app


_workload: Workload | None = None


def _load() -> Workload:
    if _workload is None:
        raise RuntimeError("no workload: this process defers jobs but does not run them")
    return _workload


def _register(app: procrastinate.App) -> None:
    @app.task(name="coop.sync", queue="sync")
    async def sync(
        connection_id: str, member_id: str, connector: str, generation: int, run_id: str
    ) -> str:
        claim = store.Claim(
            uuid.UUID(connection_id), uuid.UUID(member_id), connector, generation, uuid.UUID(run_id)
        )
        return (await _load().engine.run_claimed(claim)).outcome

    @app.task(name="coop.score", queue="scoring")
    async def score(member_id: str) -> int:
        flow = _load().flow
        if flow is None:
            return 0
        return len(await flow.rescore_job(member_id=uuid.UUID(member_id)))

    @app.periodic(cron="* * * * * */15")
    @app.task(name="coop.schedule", queue="periodic", queueing_lock="coop.schedule")
    async def schedule(timestamp: int) -> int:
        return await schedule_due(app, _load().engine)

    @app.periodic(cron="* * * * * */15")
    @app.task(name="coop.webhooks", queue="periodic", queueing_lock="coop.webhooks")
    async def deliver_notices(timestamp: int) -> int:
        notices = _load().notices
        return 0 if notices is None else await notices()

    @app.periodic(cron="17 * * * *")
    @app.task(name="coop.housekeeping", queue="periodic", queueing_lock="coop.housekeeping")
    async def housekeeping(timestamp: int) -> dict[str, int | None]:
        return await Housekeeping(_load().settings).run_once()

    @app.periodic(cron="* * * * * */30")
    @app.task(name="coop.recover", queue="periodic", queueing_lock="coop.recover")
    async def recover(timestamp: int) -> int:
        return await retry_stalled(app)


def _sync_args(claim: store.Claim) -> dict[str, Any]:
    return {
        "connection_id": str(claim.connection_id),
        "member_id": str(claim.member_id),
        "connector": claim.connector,
        "generation": claim.generation,
        "run_id": str(claim.run_id),
    }


async def defer_sync(app: procrastinate.App, claim: store.Claim) -> None:
    """Queue one claimed run (the claim is the job's arguments: it names the run)."""
    # No queueing lock: the claim already makes this the connection's only run (SY-06).
    await app.configure_task("coop.sync").defer_async(**_sync_args(claim))


async def defer_score(app: procrastinate.App, member_id: uuid.UUID) -> None:
    """Queue a rescore unless one is already waiting for this member."""
    with contextlib.suppress(procrastinate_errors.AlreadyEnqueued):
        await app.configure_task("coop.score", queueing_lock=f"score:{member_id}").defer_async(
            member_id=str(member_id)
        )


async def schedule_due(app: procrastinate.App, engine: SyncEngine) -> int:
    """Claim every due connection and defer one run each, a batch at a time: one statement
    claims a batch, one inserts their sync runs, one defers their jobs."""
    from coop.types import utcnow

    queued = 0
    while True:
        claims = await store.claim_due(
            now=utcnow(), limit=SCHEDULE_BATCH, lease_seconds=engine.lease_seconds
        )
        if claims:
            await app.tasks["coop.sync"].batch_defer_async(*(_sync_args(c) for c in claims))
        queued += len(claims)
        if len(claims) < SCHEDULE_BATCH:
            return queued


async def retry_stalled(app: procrastinate.App) -> int:
    """Retry the jobs of workers that stopped sending heartbeats (killed, machine lost);
    returns how many were retried. Each job on its own: one that cannot be retried never
    keeps the others stalled."""
    stalled = list(await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=STALLED_SECONDS))
    retried = 0
    for job in stalled:
        assert job.id is not None
        extra = {"job": job.task_name, "job_id": job.id}
        try:
            await app.job_manager.retry_job(job)
        except procrastinate_errors.UniqueViolation:
            # The same work waits already: a job with this queueing lock (the member's next
            # rescore, the next periodic tick) was queued while this one hung. Two waiting
            # copies are not allowed, and the waiting one does all of it.
            await _drop_covered(app, job.id, extra)
            continue
        except procrastinate_errors.ConnectorException as exc:
            # E.g. another worker's pass retried it a moment ago: it is no longer "doing".
            log.warning("a stalled job was not retried", extra={**extra, "error": str(exc)})
            continue
        log.warning("retrying a stalled job", extra=extra)
        retried += 1
    return retried


async def _drop_covered(app: procrastinate.App, job_id: int, extra: dict[str, object]) -> None:
    log.warning("dropping a stalled job: the same work is queued again", extra=extra)
    with contextlib.suppress(procrastinate_errors.ConnectorException):  # gone meanwhile
        await app.job_manager.finish_job_by_id_async(
            job_id=job_id, status=Status.ABORTED, delete_job=True
        )


def dispatcher(app: procrastinate.App) -> Callable[[store.Claim], Awaitable[None]]:
    async def dispatch(claim: store.Claim) -> None:
        await defer_sync(app, claim)

    return dispatch


def rescore_later(app: procrastinate.App) -> Callable[[SyncOutcome], Awaitable[None]]:
    """The sync engine's after-sync hook on PostgreSQL: scoring is its own job."""

    async def hook(outcome: SyncOutcome) -> None:
        await defer_score(app, outcome.member_id)

    return hook


async def apply_schema(settings: Settings) -> bool:
    """Create procrastinate's tables unless they exist (`coop migrate` on PostgreSQL)."""
    app = build(settings)
    async with app.open_async():
        rows = await app.connector.execute_query_one_async(
            "SELECT to_regclass('procrastinate_jobs') IS NOT NULL AS present"
        )
        created = not (rows and rows["present"])
        if created:
            await app.schema_manager.apply_schema_async()
        await app.connector.execute_query_async(QUEUE_MEMBER_INDEX)
    return created


class WorkerRun:
    """A procrastinate worker in this process until `stop`, restarted when it stops on its
    own: procrastinate stops its worker when the database goes away (a restart, a fault),
    and the process must take jobs again once it is back, without a restart."""

    def __init__(self, app: procrastinate.App, workload: Workload, *, concurrency: int) -> None:
        self.app = app
        self.workload = workload
        self.concurrency = concurrency
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def options(self) -> dict[str, Any]:
        return {
            "concurrency": self.concurrency,
            "install_signal_handlers": False,
            "update_heartbeat_interval": HEARTBEAT_SECONDS,
            "stalled_worker_timeout": STALLED_SECONDS,
            "delete_jobs": "successful",
            "fetch_job_polling_interval": 2.0,
            "shutdown_graceful_timeout": 10.0,
        }

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        delay = 1.0
        while not self._stopping:
            started = loop.time()
            try:
                await self.app.run_worker_async(**self.options())
            except Exception as exc:
                log.warning("job worker failed", extra={"error": type(exc).__name__})
            if self._stopping:
                return
            delay = 1.0 if loop.time() - started > 60 else min(delay * 2, 30.0)
            log.warning("job worker stopped: restarting", extra={"in_seconds": delay})
            await asyncio.sleep(delay)

    def start(self) -> None:
        global _workload
        _workload = self.workload
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self._supervise(), name="coop-worker")

    async def run_forever(self) -> None:
        """`coop worker`: until SIGTERM or SIGINT, then finish running jobs and return."""
        loop = asyncio.get_running_loop()
        self.start()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, lambda: loop.create_task(self.stop()))
        assert self._task is not None
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


__all__ = [
    "WorkerRun",
    "Workload",
    "apply_schema",
    "build",
    "defer_score",
    "defer_sync",
    "dispatcher",
    "rescore_later",
    "retry_stalled",
    "schedule_due",
]
