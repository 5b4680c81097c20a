"""Composition: build the Starlette application from settings."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial

from starlette.applications import Starlette
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from tortoise.contrib.starlette import RegisterTortoise

from coop.config import Settings
from coop.db import ensure_data_dir, tortoise_config
from coop.errors import CoopError
from coop.http.middleware import api_stack, middleware_stack
from coop.http.runtime import Runtime
from coop.jobs import pgqueue
from coop.jobs import scoring as scoring_jobs
from coop.jobs import sync as sync_jobs
from coop.jobs.housekeeping import Housekeeping
from coop.jobs.leader import Leader, lock_for, processes_lock_for
from coop.jobs.recovery import recover_interrupted
from coop.portability import lifecycle as portability_lifecycle
from coop.portability import notices as portability_notices
from coop.portability import webhooks
from coop.scoring.bands import bands_of
from coop.vault import Vault, load_keyring, load_secret_key
from coop.web.errors import exception_handlers, fault_handlers

log = logging.getLogger("coop")

# Routes that accept uploads get COOP_MAX_UPLOAD_BYTES instead of COOP_MAX_BODY_BYTES.
UPLOAD_PREFIXES = tuple(
    f"/connectors/{name}/upload" for name in ("archive", "facebook", "instagram", "linkedin")
)


def build_runtime(settings: Settings) -> Runtime:
    ensure_data_dir(settings)
    return Runtime(
        settings=settings, vault=Vault(load_keyring(settings), load_secret_key(settings))
    )


def routes() -> list[BaseRoute]:
    from coop.api import routes as api
    from coop.http import health
    from coop.oauth import routes as oauth
    from coop.web import routes as web

    return [*health.routes(), *api.routes(), *oauth.routes(), *web.routes()]


class CoopApp(Starlette):
    """The Starlette app, with a short lane for the GraphQL API.

    HTTP requests to /graphql carry bearer tokens only: they go through `api_stack` (request
    id and log line, security headers, body limit, error responses) straight to the endpoint,
    not through the web stack's sessions, cross-site guard and router. Everything else,
    WebSockets to /graphql included, takes the normal way.
    """

    api_lane: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.api_lane is not None and scope["type"] == "http" and scope["path"] == "/graphql":
            scope["app"] = self
            await self.api_lane(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


async def scorer_band_edges(flow: scoring_jobs.ScoringFlow) -> dict[str, tuple[float, ...]]:
    """Each loaded scorer's band edges (none while the scorers cannot be loaded)."""
    try:
        metas = await flow.installed()
    except CoopError:
        return {}
    return {m.name: bands_of(m.range, m.bands) for m in metas}


async def start_in_process_jobs(
    stack: AsyncExitStack, settings: Settings, runtime: Runtime, jobs: sync_jobs.Jobs
) -> None:
    """The embedded default's background work: scheduler, housekeeping, deletion and score
    notices (runs go to `jobs.queue`), in the one process of those sharing this data folder
    that holds its jobs lock (coop.jobs.leader): at once, or when that process stops."""
    housekeeping = Housekeeping(settings)
    runtime.housekeeping = housekeeping
    notices = portability_lifecycle.WebhookWorker(settings, runtime.vault)

    async def start() -> None:
        jobs.scheduler.start()
        housekeeping.start()
        notices.start()

    # Undone in reverse order: the standby stops first, then whatever it started, and the
    # lock goes last (no other process takes over while a round is still running here).
    leader = Leader(lock_for(settings.data_dir), start)
    stack.callback(leader.lock.release)
    stack.push_async_callback(jobs.scheduler.stop)
    stack.push_async_callback(housekeeping.stop)
    stack.push_async_callback(notices.stop)
    stack.push_async_callback(leader.stop)
    await leader.begin()


def no_jobs_notice(settings: Settings) -> str:
    """What `coop serve --no-jobs` says at start: what it leaves undone, and who must do it."""
    who = (
        "run `coop serve` without --no-jobs on the same COOP_DATA_DIR (SQLite has no `coop worker`)"
        if settings.is_sqlite
        else "run at least one `coop worker` (or a `coop serve` without --no-jobs) on this database"
    )
    return (
        "--no-jobs: this process runs no background work (scheduled syncs, scoring after "
        f"syncs, housekeeping, notices); {who}"
    )


async def deliver_notices(settings: Settings, vault: Vault) -> int:
    """Every kind of notice due to apps: deauthorizations (deletions) and score changes."""
    sent = await webhooks.deliver_due(settings, vault)
    return sent + await portability_notices.deliver_due_notices(settings, vault)


async def open_shared_queue(
    stack: AsyncExitStack,
    settings: Settings,
    runtime: Runtime,
    jobs: sync_jobs.Jobs,
    scoring: scoring_jobs.ScoringFlow,
    *,
    run_jobs: bool,
    concurrency: int = 4,
) -> pgqueue.WorkerRun:
    """PostgreSQL: claimed runs and rescoring go to the shared queue (procrastinate), and,
    unless `run_jobs` is off (`--no-jobs`), this process also works on it."""
    queue = pgqueue.build(settings)
    await stack.enter_async_context(queue.open_async())
    jobs.dispatch = pgqueue.dispatcher(queue)
    jobs.engine.after_sync[:] = [pgqueue.rescore_later(queue)]
    scoring.defer = partial(pgqueue.defer_score, queue)
    workload = pgqueue.Workload(
        settings,
        runtime.vault,
        jobs.engine,
        scoring,
        notices=partial(deliver_notices, settings, runtime.vault),
    )
    worker = pgqueue.WorkerRun(queue, workload, concurrency=concurrency)
    if run_jobs:
        worker.start()
        stack.push_async_callback(worker.stop)
    return worker


def build_app(
    settings: Settings | None = None, *, manage_db: bool = True, run_jobs: bool = True
) -> Starlette:
    """The ASGI app. `manage_db=False` when the caller (tests) already initialised tortoise
    (jobs then run in-process on either engine); `run_jobs=False` (`coop serve --no-jobs`)
    runs no background work in this process."""
    settings = settings or Settings.from_env()
    runtime = build_runtime(settings)
    jobs = sync_jobs.setup(settings, runtime.vault)
    runtime.jobs = jobs
    scoring = scoring_jobs.flow_for(runtime)  # rescores after each sync; sandbox starts lazily
    # Apps may ask for `score:<name>` only for scorers installed here (metadata, no import)
    # and, with governance on, approved by the members.
    runtime.known_scorers = scoring.offered_scorer_names
    runtime.scorer_bands = partial(scorer_band_edges, scoring)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if manage_db:
                await stack.enter_async_context(
                    RegisterTortoise(app, config=tortoise_config(settings))
                )
                await runtime.vault.check_keyring()
                # Erasures are finished and the ledger re-applied before serving (ER-05).
                await portability_lifecycle.converge(vault=runtime.vault, settings=settings)
                if settings.is_sqlite:  # runs left queued by a process that died
                    processes = processes_lock_for(settings.data_dir)
                    stack.callback(processes.release)
                    await processes.join(recover_interrupted)
            stack.push_async_callback(jobs.queue.close)
            stack.push_async_callback(api.close, runtime)
            stack.push_async_callback(scoring_jobs.close, runtime)
            background = run_jobs and settings.scheduler
            if manage_db and not settings.is_sqlite:
                await open_shared_queue(
                    stack, settings, runtime, jobs, scoring, run_jobs=background
                )
            elif background:
                await start_in_process_jobs(stack, settings, runtime, jobs)
            if not run_jobs:
                log.warning(no_jobs_notice(settings), extra={"code": "no_jobs"})
            await scoring.record_baseline_at_start()
            # Start-up objects live for the whole process: keep them out of the collector's
            # scans (GC pauses otherwise dominate the tail latency, docs/benchmarks.md).
            gc.freeze()
            yield

    from coop.api import routes as api

    handlers = exception_handlers()
    app = CoopApp(
        routes=routes(),
        middleware=middleware_stack(
            settings, upload_prefixes=UPLOAD_PREFIXES, fault_handlers=fault_handlers()
        ),
        exception_handlers=handlers,
        lifespan=lifespan,
    )
    app.api_lane = api_stack(settings, api.graphql, handlers)
    app.state.runtime = runtime
    return app


def served_app() -> Starlette:
    """The app of one of `coop serve --workers N`'s processes (uvicorn's factory)."""
    from coop.logs import configure_logging

    settings = Settings.from_env()
    configure_logging(settings)
    return build_app(settings, run_jobs=not settings.serve_no_jobs)


async def run_worker(settings: Settings, *, concurrency: int) -> None:
    """`coop worker`: run the shared queue's jobs until SIGTERM/SIGINT (PostgreSQL)."""
    from tortoise import Tortoise

    runtime = build_runtime(settings)
    jobs = sync_jobs.setup(settings, runtime.vault)
    runtime.jobs = jobs
    scoring = scoring_jobs.flow_for(runtime)
    await Tortoise.init(config=tortoise_config(settings))
    try:
        await runtime.vault.check_keyring()
        async with AsyncExitStack() as stack:
            stack.push_async_callback(scoring_jobs.close, runtime)
            worker = await open_shared_queue(
                stack, settings, runtime, jobs, scoring, run_jobs=False, concurrency=concurrency
            )
            await scoring.record_baseline_at_start()
            log.info("worker started", extra={"concurrency": concurrency})
            await worker.run_forever()
    finally:
        await Tortoise.close_connections()
