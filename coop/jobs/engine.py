"""The sync engine: runs a connector's `sync`, commits each batch with its cursor, handles faults.

- Each batch and its cursor commit in one transaction, after re-checking that the member still
  wants the connection (SY-01, SY-02, SY-08, ER-07).
- Transient failures restart the connector from the last committed cursor after a full-jitter
  exponential backoff: at most `max_attempts` attempts in a row, `retry_budget` in a run
  (SY-04). `Throttled` stops the run and schedules the next one after `retry_after` (SY-03).
  `NeedsReauthorization` stops without any retry (SY-05).
- Exactly one run per connection: the claim is an atomic conditional UPDATE (SY-06).
Sleeping and randomness are injected, so tests drive backoff with a fake clock.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from coop.config import Settings
from coop.connectors import spec, store
from coop.connectors.outbound import Guard, Limits, OutboundClient
from coop.connectors.registry import Registry
from coop.errors import ConflictError, CoopError, KeyMissingError
from coop.jobs.queue import JobQueue
from coop.types import utcnow
from coop.vault import Vault

log = logging.getLogger("coop.jobs.sync")

Sleep = Callable[[float], Awaitable[None]]

REASONS: Mapping[str, str] = {
    "throttled": "The source asked coop to slow down; the next sync waits until it allows.",
    "needs_reauthorization": "The source no longer accepts coop's access. Reconnect to resume.",
    "retries_exhausted": "The source kept failing with temporary errors; coop will try later.",
    "upstream_error": (
        "The source answered with an error ({detail}). coop tries again at the next sync; if "
        "the address is wrong, disconnect it and connect the right one."
    ),
    "url_not_allowed": "The source address (or a redirect) points to a private address.",
    "source_too_large": "The source is larger than coop accepts.",
    "unsafe_xml": "The feed uses unsafe XML (entity declarations) and was refused.",
    "invalid_source": "The source could not be read as a supported format.",
    "too_many_redirects": "The source address redirects too many times.",
    "unsafe_archive_member": "The archive contains unsafe file names and was refused.",
    "archive_too_large": "The archive is larger than coop accepts.",
    "internal_error": "Something went wrong on coop's side; it will try again later.",
}


def reason_for(code: str, detail: str = "") -> str:
    """The member-facing reason for an error code. `detail` is the connector's own words
    ("upstream answered 404"), never upstream text; it fills a reason's {detail}."""
    known = REASONS.get(code)
    if known:
        return known.format(detail=detail[:200] or "no detail")
    return detail[:200] or REASONS["invalid_source"]


@dataclass(frozen=True)
class SyncOutcome:
    """How one run ended. `outcome`: ok, throttled, needs_reauthorization, failing, withdrawn."""

    connection_id: uuid.UUID
    member_id: uuid.UUID
    connector: str
    outcome: str
    records_added: int = 0
    error_code: str = ""


AfterSync = Callable[[SyncOutcome], Awaitable[None]]


class RetriesExhausted(Exception):
    pass


@dataclass
class RetryBudget:
    """Keeps retries to about `ratio` of upstream requests across every run of this worker
    (SY-04, Google SRE ch. 22): each request deposits `ratio` of a token, each retry spends one.
    A reserve that refills over time (`reserve` tokens per minute) lets a quiet worker retry
    at all, and caps what a burst of failures can spend."""

    ratio: float = 0.1
    reserve: float = 10.0
    cap: float = 100.0
    tokens: float = 10.0
    _refilled_at: datetime | None = None

    def deposit(self) -> None:
        self.tokens = min(self.cap, self.tokens + self.ratio)

    def withdraw(self) -> bool:
        now = utcnow()
        if self._refilled_at is not None and self.tokens < self.reserve:
            refill = (now - self._refilled_at).total_seconds() * self.reserve / 60.0
            self.tokens = min(self.reserve, self.tokens + refill)
        self._refilled_at = now
        if self.tokens < 1.0 - 1e-9:  # tenths of tokens add up with rounding error
            return False
        self.tokens = max(0.0, self.tokens - 1.0)
        return True


class _WatchedHttp:
    """The connector's HTTP client: refuses any request once the member withdrew (SY-08)."""

    def __init__(self, inner: OutboundClient, claim: store.Claim, budget: RetryBudget) -> None:
        self._inner = inner
        self._claim = claim
        self._budget = budget

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        if not await store.still_wanted(self._claim):
            raise store.Withdrawn()
        self._budget.deposit()
        return await self._inner.request(method, url, **kwargs)

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", url, **kwargs)


@dataclass
class SyncEngine:
    vault: Vault
    registry: Registry
    settings: Settings
    guard: Guard
    limits: Limits = field(default_factory=Limits)
    sleep: Sleep = asyncio.sleep
    rand: Callable[[], float] = random.random
    lease_seconds: float = 600.0
    max_attempts: int = 3
    retry_budget: int = 6
    base_delay: float = 1.0
    max_delay: float = 30.0
    failure_delay: float = 3600.0
    retry_tokens: RetryBudget = field(default_factory=RetryBudget)
    after_sync: list[AfterSync] = field(default_factory=list)

    async def try_claim(self, connection_id: uuid.UUID) -> store.Claim | None:
        """Claim a connection for one run; None when a run holds it already (SY-06)."""
        return await store.claim(connection_id=connection_id, lease_seconds=self.lease_seconds)

    async def claim(self, connection_id: uuid.UUID) -> store.Claim:
        """Claim a connection for one run, or raise ConflictError(sync_already_running)."""
        claimed = await self.try_claim(connection_id)
        if claimed is None:
            raise ConflictError("A sync is already running.", code="sync_already_running")
        return claimed

    def queue_run(self, queue: JobQueue, claim: store.Claim) -> None:
        """Hand a claimed run to `queue` as the job `sync:<connection id>`."""
        queue.submit(f"sync:{claim.connection_id}", lambda: self.run_claimed(claim))

    async def run(self, connection_id: uuid.UUID, *, upload: bytes | None = None) -> SyncOutcome:
        """Claim and run one sync to its end (raises ConflictError if one is running)."""
        return await self.run_claimed(await self.claim(connection_id), upload=upload)

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2^attempt)] (AWS Architecture Blog)."""
        cap = min(self.max_delay, self.base_delay * 2.0**attempt)
        return float(self.rand()) * cap

    async def run_claimed(self, claim: store.Claim, *, upload: bytes | None = None) -> SyncOutcome:
        added = 0

        def counted(n: int) -> None:
            nonlocal added
            added += n

        try:
            await self._drive(claim, upload, counted)
        except store.Withdrawn:
            return await self._withdrawn(claim, added)
        except KeyMissingError:
            return await self._withdrawn(claim, added)
        except spec.Throttled as exc:
            wait = max(float(exc.retry_after), 1.0)
            return await self._end(
                claim, "throttled", "throttled", added, utcnow() + timedelta(seconds=wait)
            )
        except spec.NeedsReauthorization:
            return await self._end(
                claim, "needs_reauthorization", "needs_reauthorization", added, None
            )
        except RetriesExhausted:
            return await self._failing(claim, "retries_exhausted", added)
        except spec.InvalidSourceError as exc:
            return await self._failing(claim, exc.code, added, str(exc))
        except spec.PermanentUpstreamError as exc:
            return await self._failing(claim, "upstream_error", added, str(exc))
        except CoopError as exc:
            return await self._failing(claim, exc.code, added)
        except Exception as exc:  # a connector bug must not kill the worker or leak data
            log.error(
                "sync crashed",
                extra={"connection": str(claim.connection_id), "error": type(exc).__name__},
            )
            return await self._failing(claim, "internal_error", added)
        connector = self.registry.find(claim.connector)
        every = self.settings.sync_interval_seconds
        next_at = (
            None
            if connector and connector.auth == "upload"
            else utcnow() + timedelta(seconds=every)
        )
        outcome = await self._end(claim, "ok", "ok", added, next_at, reason="")
        for hook in list(self.after_sync):
            try:
                await hook(outcome)
            except Exception as exc:  # a hook's failure never undoes a committed sync
                log.error("after_sync hook failed", extra={"error": type(exc).__name__})
        return outcome

    async def _drive(
        self, claim: store.Claim, upload: bytes | None, counted: Callable[[int], None]
    ) -> None:
        connector = self.registry.find(claim.connector)
        if connector is None:
            raise spec.PermanentUpstreamError("connector not installed")
        state = await store.load_state(vault=self.vault, claim=claim)
        cursor = state.cursor
        in_a_row = 0
        retries = 0
        async with OutboundClient(self.guard, self.limits) as http:
            ctx = self._context(claim, http, state, upload)
            while True:
                try:
                    async with aclosing(connector.sync(ctx, cursor)) as batches:  # type: ignore[type-var]
                        async for batch in batches:
                            counted(await self._commit(claim, batch))
                            cursor = batch.cursor
                            in_a_row = 0
                    # A connector may end quietly once still_wanted() says no; the engine,
                    # not the connector, rules that such a run was withdrawn (no "ok", no hooks).
                    if not await store.still_wanted(claim):
                        raise store.Withdrawn()
                    return
                except (spec.TransientUpstreamError, httpx.TransportError) as exc:
                    in_a_row += 1
                    retries += 1
                    log.info(
                        "transient upstream failure",
                        extra={"connection": str(claim.connection_id), "error": type(exc).__name__},
                    )
                    if in_a_row >= self.max_attempts or retries >= self.retry_budget:
                        raise RetriesExhausted() from None
                    if not self.retry_tokens.withdraw():  # this worker is retrying too much
                        raise RetriesExhausted() from None
                    await self.sleep(self.backoff(in_a_row))
                    if not await store.still_wanted(claim):
                        raise store.Withdrawn() from None

    def _context(
        self,
        claim: store.Claim,
        http: OutboundClient,
        state: store.SyncState,
        upload: bytes | None,
    ) -> spec.SyncContext:
        async def save_credentials(credentials: Mapping[str, str]) -> None:
            await store.save_credentials(vault=self.vault, claim=claim, credentials=credentials)
            # A retry restarts the connector with this same context: it must see the stored
            # pair, not the one it replaced (a spent refresh token would need reauthorization).
            ctx.credentials = dict(credentials)

        async def still_wanted() -> bool:
            return await store.still_wanted(claim)

        ctx = spec.SyncContext(
            http=_WatchedHttp(http, claim, self.retry_tokens),
            config=state.config,
            credentials=state.credentials,
            now=utcnow(),
            save_credentials=save_credentials,
            still_wanted=still_wanted,
            upload=upload,
        )
        return ctx

    async def _commit(self, claim: store.Claim, batch: spec.SyncBatch) -> int:
        return await store.commit_batch(
            vault=self.vault,
            claim=claim,
            records=batch.records,
            cursor=batch.cursor,
            lease_seconds=self.lease_seconds,
        )

    async def _failing(
        self, claim: store.Claim, code: str, added: int, message: str = ""
    ) -> SyncOutcome:
        reason = reason_for(code, message)
        next_at = utcnow() + timedelta(seconds=self.failure_delay)
        return await self._end(
            claim, "failing", "failing", added, next_at, code=code, reason=reason
        )

    async def _end(
        self,
        claim: store.Claim,
        status: str,
        outcome: str,
        added: int,
        next_at: Any,
        *,
        code: str | None = None,
        reason: str | None = None,
    ) -> SyncOutcome:
        error_code = "" if outcome == "ok" else (code or outcome)
        await store.finish(
            claim=claim,
            status=status,
            reason=REASONS.get(error_code, "") if reason is None else reason,
            next_sync_at=next_at,
            outcome=outcome,
            error_code=error_code,
            records_added=added,
        )
        log.info(
            "sync finished",
            extra={"connection": str(claim.connection_id), "outcome": outcome, "added": added},
        )
        return SyncOutcome(
            claim.connection_id, claim.member_id, claim.connector, outcome, added, error_code
        )

    async def _withdrawn(self, claim: store.Claim, added: int) -> SyncOutcome:
        await store.release_withdrawn(claim)
        return SyncOutcome(
            claim.connection_id, claim.member_id, claim.connector, "withdrawn", added, "withdrawn"
        )


__all__ = ["REASONS", "AfterSync", "RetryBudget", "SyncEngine", "SyncOutcome"]
