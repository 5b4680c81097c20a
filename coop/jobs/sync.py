"""Sync flows that transports call: connect (and sync on connect), sync now, import, disconnect.

`Jobs` bundles the long-lived parts (registry, guard, engine, queue, scheduler); `setup`
builds it once per app and stores it in `Runtime.jobs` (`get_jobs` reads it back).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from coop.config import Settings
from coop.connectors import bluesky_oauth, password_login, service
from coop.connectors.outbound import Guard, Resolver
from coop.connectors.registry import Registry
from coop.connectors.store import Claim
from coop.errors import ConflictError, SourceRejectedError, SourceTooLargeError
from coop.jobs.engine import SyncEngine, reason_for
from coop.jobs.queue import InProcessQueue, JobQueue
from coop.jobs.scheduler import Scheduler
from coop.vault import Vault

log = logging.getLogger("coop.jobs.sync")

TOO_LARGE_CODES = frozenset({"archive_too_large", "source_too_large"})


Dispatch = Callable[[Claim], Awaitable[None]]


@dataclass
class Jobs:
    vault: Vault
    registry: Registry
    guard: Guard
    engine: SyncEngine
    queue: JobQueue
    scheduler: Scheduler
    # Where claimed runs go: None runs them in this process (`queue`); on PostgreSQL the
    # shared job queue (coop.jobs.pgqueue), so that any worker process takes them.
    dispatch: Dispatch | None = None


def setup(
    settings: Settings,
    vault: Vault,
    *,
    registry: Registry | None = None,
    resolver: Resolver | None = None,
    **engine_options: Any,
) -> Jobs:
    registry = registry or Registry.load(settings.connector_env(), allowed=settings.plugins)
    bluesky_oauth.attach(registry, settings, vault)
    guard = Guard.from_settings(settings, resolver)
    engine = SyncEngine(
        vault=vault, registry=registry, settings=settings, guard=guard, **engine_options
    )
    queue = InProcessQueue()
    return Jobs(vault, registry, guard, engine, queue, Scheduler(engine, queue))


class HasJobs(Protocol):
    """What `get_jobs` needs of coop.http.runtime.Runtime (flows may not import http)."""

    @property
    def jobs(self) -> Jobs | None: ...


def get_jobs(runtime: HasJobs) -> Jobs:
    """The app's sync jobs; ConflictError where this process has none (the CLI's runtime)."""
    if runtime.jobs is None:
        raise ConflictError("Syncing is not available on this server.")
    return runtime.jobs


async def _queue_run(jobs: Jobs, claim: Claim) -> None:
    if jobs.dispatch is not None:
        await jobs.dispatch(claim)
    else:
        jobs.engine.queue_run(jobs.queue, claim)


async def connect(
    jobs: Jobs,
    *,
    member_id: uuid.UUID,
    connector: str,
    config: Mapping[str, str],
    credentials: Mapping[str, str] | None = None,
) -> service.ConnectionView:
    """Create a connection and queue its first sync (sync on connect). OAuth callbacks call
    this with the tokens they obtained."""
    view = await service.create_connection(
        vault=jobs.vault,
        registry=jobs.registry,
        member_id=member_id,
        connector=connector,
        config=config,
        credentials=credentials,
    )
    await _queue_run(jobs, await jobs.engine.claim(view.id))
    return view


async def connect_feed(jobs: Jobs, *, member_id: uuid.UUID, url: str) -> service.ConnectionView:
    view = await service.connect_feed(
        vault=jobs.vault, registry=jobs.registry, guard=jobs.guard, member_id=member_id, url=url
    )
    await _queue_run(jobs, await jobs.engine.claim(view.id))
    return view


async def connect_with_password(
    jobs: Jobs, *, member_id: uuid.UUID, connector: str, account: str, password: str
) -> service.ConnectionView:
    """Log in upstream with an app password, then connect (or renew the member's connection to
    the same account) and queue a sync. The password is not kept."""
    login = await password_login.log_in(
        registry=jobs.registry,
        guard=jobs.guard,
        connector=connector,
        account=account,
        password=password,
    )
    existing = await password_login.find_same_account(
        vault=jobs.vault,
        registry=jobs.registry,
        member_id=member_id,
        connector=connector,
        login=login,
    )
    if existing is None:
        return await connect(
            jobs,
            member_id=member_id,
            connector=connector,
            config=login.config,
            credentials=login.credentials,
        )
    await service.reauthorize(
        vault=jobs.vault,
        member_id=member_id,
        connection_id=existing,
        credentials=login.credentials,
        config=login.config,  # the account may have moved to another PDS
    )
    await _queue_run(jobs, await jobs.engine.claim(existing))
    return await service.get_connection(
        vault=jobs.vault, registry=jobs.registry, member_id=member_id, connection_id=existing
    )


async def sync_now(jobs: Jobs, *, member_id: uuid.UUID, connection_id: uuid.UUID) -> None:
    """Queue a run now; ConflictError(sync_already_running) if one is running (SY-06)."""
    await service.get_connection(
        vault=jobs.vault, registry=jobs.registry, member_id=member_id, connection_id=connection_id
    )
    await _queue_run(jobs, await jobs.engine.claim(connection_id))


async def import_archive(
    jobs: Jobs, *, member_id: uuid.UUID, data: bytes, connector: str = "archive"
) -> service.ConnectionView:
    """Read an uploaded archive into the member's connection to `connector` (an upload
    connector: `archive`, `facebook`, `instagram`, `linkedin`), in the request.

    Unsafe or unreadable archives are refused with their code (and a connection created for
    this upload alone is removed again)."""
    if jobs.registry.get(connector).auth != "upload":
        raise SourceRejectedError("This connector does not take uploads.", code="invalid_source")
    existing = await service.find_connection(member_id=member_id, connector=connector)
    if existing is None:
        view = await service.create_connection(
            vault=jobs.vault,
            registry=jobs.registry,
            member_id=member_id,
            connector=connector,
            config={"archive": "Uploaded archive"},
        )
        connection_id = view.id
    else:
        connection_id = existing
    outcome = await jobs.engine.run(connection_id, upload=data)
    if outcome.outcome == "failing":
        if existing is None:
            await service.delete_connection(member_id=member_id, connection_id=connection_id)
        error = (
            SourceTooLargeError if outcome.error_code in TOO_LARGE_CODES else SourceRejectedError
        )
        raise error(reason_for(outcome.error_code), code=outcome.error_code)
    return await service.get_connection(
        vault=jobs.vault, registry=jobs.registry, member_id=member_id, connection_id=connection_id
    )


REVOKE_RETRIES = 3


async def disconnect(jobs: Jobs, *, member_id: uuid.UUID, connection_id: uuid.UUID) -> int:
    """Delete the connection and its records now; revoke upstream, retrying in the background
    (full-jitter backoff, REVOKE_RETRIES more attempts) when the first try fails (ER-03)."""

    def retry_later(attempt: service.RevokeAttempt) -> None:
        async def job() -> None:
            for n in range(1, REVOKE_RETRIES + 1):
                await jobs.engine.sleep(jobs.engine.backoff(n))
                if await attempt():
                    return
            log.warning("upstream revoke abandoned", extra={"connection": str(connection_id)})

        jobs.queue.submit(f"revoke:{connection_id}", job)

    return await service.disconnect(
        vault=jobs.vault,
        registry=jobs.registry,
        guard=jobs.guard,
        member_id=member_id,
        connection_id=connection_id,
        retry_revoke=retry_later,
    )


__all__ = [
    "Jobs",
    "connect",
    "connect_feed",
    "connect_with_password",
    "disconnect",
    "get_jobs",
    "import_archive",
    "setup",
    "sync_now",
]
