"""The scoring flow: load a member's records (connectors) -> score (sandbox) -> store (scoring).

It is the only place where the connectors and scoring domains meet. It runs after every
successful sync (registered into the sync engine's `after_sync` hooks) and on demand.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from coop.config import Settings
from coop.connectors import service as connectors
from coop.consent import notices
from coop.errors import CoopError, KeyMissingError, SandboxUnavailableError, ScorerUnavailableError
from coop.governance import service as governance
from coop.governance.rules import Rules
from coop.jobs.engine import SyncEngine, SyncOutcome
from coop.jobs.governance import held_reason
from coop.jobs.queue import JobQueue
from coop.jobs.sync import Jobs
from coop.scoring import absence, declared, previews, versions
from coop.scoring import service as scoring
from coop.scoring.registry import discover
from coop.scoring.runner import Runner
from coop.scoring.sandbox import PluginStatus, Sandbox, SandboxConfig
from coop.scoring.validate import ScorerMeta
from coop.types import utcnow
from coop.vault import Vault

log = logging.getLogger("coop.jobs.scoring")


class RuntimeLike(Protocol):
    """What the flow needs of coop.http.runtime.Runtime (flows may not import http)."""

    settings: Settings
    vault: Vault
    scoring: ScoringFlow | None

    @property
    def jobs(self) -> Jobs | None: ...


async def load_member_records(
    *, vault: Vault, member_id: uuid.UUID, kinds: Iterable[str]
) -> list[scoring.MemberRecord]:
    stored = await connectors.list_records(vault=vault, member_id=member_id, kinds=list(kinds))
    return [
        scoring.MemberRecord(
            record_id=r.id,
            kind=r.kind,
            occurred_at=r.occurred_at,
            counts=r.counts,
            text=r.text,
            network=r.network or None,
        )
        for r in connectors.distinct_records(stored)
    ]


@dataclass(frozen=True)
class RecordLink:
    record_id: str
    kind: str
    occurred_at: datetime
    title: str | None
    url: str | None


Defer = Callable[[uuid.UUID], Awaitable[None]]


@dataclass
class ScoringFlow:
    """Recomputes members' scores. `runner` is the Sandbox in the server.

    Scoring a member on request (Enable, Recompute, Accept) can run in the background: on the
    shared queue (`defer`, PostgreSQL: any worker takes it), else on the in-process `queue`;
    with neither (the CLI, tests that score in-process) it runs in the caller."""

    vault: Vault
    runner: Runner
    # COOP_GOVERNANCE: only versions the members approved are offered and run.
    governance: bool = False
    rules: Rules = field(default_factory=Rules.defaults)
    min_sharers: int = 10  # COOP_GOVERNANCE_MIN_SHARERS
    queue: JobQueue | None = None
    defer: Defer | None = None
    _declared: frozenset[str] | None = field(default=None, init=False, repr=False)
    _discovered: bool = field(default=False, init=False, repr=False)

    async def start(self) -> None:
        if isinstance(self.runner, Sandbox):
            await self.runner.start()

    async def close(self) -> None:
        if isinstance(self.runner, Sandbox):
            await self.runner.close()

    def declared_scorer_names(self) -> frozenset[str] | None:
        """Names of the allowed scorer plugins, read from package metadata only (no import, no
        sandbox): the scorers an app may ask scopes for. None when the runner is not a sandbox
        (tests and benchmarks that score in-process have no plugin registry)."""
        if not isinstance(self.runner, Sandbox):
            return None
        if self._declared is None:
            config = self.runner.config
            entries = discover(allow=config.allow, paths=config.plugin_path)
            self._declared = frozenset(e.name for e in entries if e.allowed)
        return self._declared

    async def offered_scorer_names(self) -> frozenset[str] | None:
        """The scorers an app may ask scopes for and a member may grant: the declared ones,
        and with governance on only those `available` (the installed version approved), as
        the Scorers page and the API's `scorers` offer them. None without a plugin registry
        (accept any well-formed name). Scorers that cannot be listed now: none is offered."""
        declared = self.declared_scorer_names()
        if declared is None or not self.governance:
            return declared
        try:
            metas = await self.available()
        except CoopError:
            return frozenset()
        return declared & {m.name for m in metas}

    async def installed(self) -> list[ScorerMeta]:
        """The scorers loaded on this server (contract-valid), offered or not."""
        await self.start()
        if isinstance(self.runner, Sandbox):
            return self.runner.scorers()
        return []

    async def available(self) -> list[ScorerMeta]:
        """The scorers members may enable: the installed ones, and with governance on only
        the versions the members approved (docs/governance.md)."""
        metas = await self.installed()
        if not self.governance:
            return metas
        await self.discover(metas)
        return list(await governance.offered(metas))

    async def discover(self, metas: Sequence[ScorerMeta]) -> None:
        """Once per process: record the baseline the first time governance is on, and open
        a proposal for each installed version nobody proposed yet."""
        if self._discovered:
            return
        self._discovered = True
        await governance.record_baseline(metas=metas)
        from coop.jobs.statistics import preview_statistics  # it builds on this flow

        for meta in metas:
            if await governance.never_proposed(scorer=meta.name, version=meta.version):
                opened = await governance.open_proposal(
                    vault=self.vault,
                    meta=meta,
                    rules=self.rules,
                    distribution_hash=self.distribution_hash(meta.name),
                    opened_by=governance.DISCOVERY,
                )
                await preview_statistics(flow=self, proposal_id=opened.id, minimum=self.min_sharers)

    async def record_baseline_at_start(self) -> None:
        """At start-up with governance on: record the baseline now (docs/governance.md), so
        that a scorer installed after governance was switched on and the server restarted
        needs a vote, even if no page listed the scorers in between. A sandbox that cannot
        start is logged; the first listing records the baseline instead, as before."""
        if not self.governance:
            return
        try:
            await self.discover(await self.installed())
        except CoopError as exc:
            log.warning(
                "governance: scorers not listed at start-up (%s); the baseline waits for "
                "the first listing",
                type(exc).__name__,
            )

    def distribution_hash(self, name: str) -> str:
        """The scorer distribution's content hash (coop.scoring.disthash; the RECORD hash
        for an editable install), as `coop plugins list` shows it and COOP_PLUGINS pins it."""
        if not isinstance(self.runner, Sandbox):
            return ""
        for status in self.runner.plugins:
            if status.entry.name == name:
                return status.entry.content_sha256 or status.entry.record_sha256
        return ""

    async def _check_offered(self, meta: ScorerMeta) -> None:
        if self.governance:
            await governance.require_approved(meta)

    async def plugins(self) -> list[PluginStatus]:
        await self.start()
        return list(self.runner.plugins) if isinstance(self.runner, Sandbox) else []

    async def meta(self, name: str) -> ScorerMeta:
        await self.start()
        return self.runner.meta(name)

    async def enable(
        self, *, member_id: uuid.UUID, scorer: str, wait: bool = True
    ) -> list[scoring.ScoreOutcome]:
        """Enable a scorer for the member and compute its first score: right away, or with
        `wait=False` in the background (the consent is recorded and this returns at once)."""
        meta = await self.meta(scorer)
        await self._check_offered(meta)
        await scoring.enable_scorer(member_id=member_id, meta=meta)
        return await self._score(member_id, [scorer], wait=wait)

    async def accept_version(
        self, *, member_id: uuid.UUID, scorer: str, wait: bool = True
    ) -> list[scoring.ScoreOutcome]:
        """The member accepts the installed version (what it reads now); it scores at once
        (or, with `wait=False`, in the background)."""
        meta = await self.meta(scorer)
        await self._check_offered(meta)
        await versions.accept_version(member_id=member_id, meta=meta)
        return await self._score(member_id, [scorer], wait=wait)

    async def _score(
        self, member_id: uuid.UUID, scorers: Sequence[str], *, wait: bool
    ) -> list[scoring.ScoreOutcome]:
        if wait:
            return await self.recompute_member(member_id=member_id, scorers=scorers)
        await self.recompute_soon(member_id=member_id, scorers=scorers)
        return []

    async def recompute_soon(
        self, *, member_id: uuid.UUID, scorers: Sequence[str] | None = None
    ) -> list[str]:
        """Queue a run of the member's enabled scorers (or those among `scorers`) and return
        their names at once: each is marked queued until its run records how it went."""
        names = await scoring.mark_queued(member_id=member_id, scorers=scorers)
        if not names:
            return []
        if self.defer is not None:
            await self.defer(member_id)  # the shared job scores every enabled scorer
        elif self.queue is not None:
            self.queue.submit(
                f"score:{member_id}", lambda: self.rescore_job(member_id=member_id, scorers=names)
            )
        else:
            await self.rescore_job(member_id=member_id, scorers=names)
        return names

    async def rescore_job(
        self, *, member_id: uuid.UUID, scorers: Sequence[str] | None = None
    ) -> list[scoring.ScoreOutcome]:
        """The background job: score the member. A job that cannot finish never leaves its
        scorers queued: when no scorer can run here (no sandbox) that is recorded on them;
        any other error (a record that cannot be opened, the database gone mid-job) records
        `job_failed` on those still queued, and the next run (Recompute, the next sync)
        computes them as usual. The error's text may name member data: only its type is
        logged, and the job itself ends normally (nothing for the queue to retry or log)."""
        try:
            return await self.recompute_member(member_id=member_id, scorers=scorers)
        except SandboxUnavailableError as exc:
            names = await scoring.mark_queued(member_id=member_id, scorers=scorers)
            await scoring.record_runs(member_id=member_id, scorers=names, status=exc.code)
            log.warning("scoring unavailable", extra={"error": exc.code})
            return []
        except KeyMissingError:  # erased meanwhile: nothing more is written (ER-07)
            return []
        except Exception as exc:
            error = type(exc).__name__
        # Outside the handler, so that an error recording this does not carry the first one.
        log.error("scoring job failed", extra={"code": absence.JOB_FAILED, "error": error})
        await scoring.end_queued(member_id=member_id, scorers=scorers, status=absence.JOB_FAILED)
        return []

    async def why_no_score(
        self, *, member_id: uuid.UUID, scorer: str, meta: ScorerMeta | None, available: bool
    ) -> absence.Reason:
        """Why the member has no score from `scorer` (coop.scoring.absence decides)."""
        run = await scoring.get_run(member_id=member_id, scorer=scorer)
        waiting = (await self.pending_versions(member_id=member_id)).get(scorer) if meta else None
        facts = absence.Facts(
            title=meta.title if meta else scorer,
            installed=meta is not None,
            scoring_available=available,
            enabled=run.enabled,
            ever_disabled=run.ever_disabled,
            last_status=run.last_status,
            last_run_at=run.last_run_at,
            needs_consent=waiting is not None and waiting.gap.needs_consent,
            kept=waiting is not None and waiting.kept,
            has_records=meta is not None
            and await connectors.has_records(member_id=member_id, kinds=meta.reads),
            reads_words="; ".join(declared.describe(meta.read_fields())) if meta else "",
        )
        return absence.why_no_score(facts)

    async def keep_current(self, *, member_id: uuid.UUID, scorer: str) -> None:
        """ "Keep current score": the installed version does not become the member's score."""
        await versions.keep_current(member_id=member_id, meta=await self.meta(scorer))

    async def pending_versions(self, *, member_id: uuid.UUID) -> dict[str, versions.Pending]:
        """New versions of the member's scorers that wait for them, with their previews."""
        try:
            metas = await self.available()
        except SandboxUnavailableError:
            return {}
        found = await versions.pending(member_id=member_id, metas=metas)
        for name, waiting in found.items():
            preview = await previews.get(vault=self.vault, member_id=member_id, scorer=name)
            if preview is not None and preview.version == waiting.gap.version:
                found[name] = replace(waiting, preview=preview)
        return found

    async def disable(self, *, member_id: uuid.UUID, scorer: str) -> int:
        """Stop a scorer for the member and delete its scores; returns how many were deleted."""
        return await scoring.disable_scorer(member_id=member_id, scorer=scorer)

    async def describe_records(
        self, *, member_id: uuid.UUID, record_ids: Iterable[str]
    ) -> dict[str, RecordLink]:
        """What the UI shows for records that contributions point at (title, date, link)."""
        wanted: set[uuid.UUID] = set()
        for value in record_ids:
            try:
                wanted.add(uuid.UUID(str(value)))
            except ValueError:
                continue  # not a record reference: nothing to link
        if not wanted:
            return {}
        # Only the records shown are read and decrypted, not the member's whole history.
        # A record that no longer opens loses its link, not the page (the contribution's
        # amount and reason are the explanation's own).
        stored = await connectors.list_records(
            vault=self.vault, member_id=member_id, ids=wanted, skip_unreadable=True
        )
        return {
            str(r.id): RecordLink(str(r.id), r.kind, r.occurred_at, r.title, r.url) for r in stored
        }

    async def recompute_member(
        self,
        *,
        member_id: uuid.UUID,
        scorers: Sequence[str] | None = None,
        now: datetime | None = None,
    ) -> list[scoring.ScoreOutcome]:
        """Score the member with each enabled scorer (or the enabled ones among `scorers`)."""
        await self.start()
        try:
            await self.vault.cipher_for(member_id)
        except KeyMissingError:  # erased (or being erased): nothing to score (ER-07)
            return []
        enabled = await scoring.list_enabled_scorers(member_id=member_id)
        names = [n for n in enabled if scorers is None or n in scorers]
        metas = []
        for name in names:
            try:
                metas.append(self.runner.meta(name))
            except ScorerUnavailableError:
                log.warning("enabled scorer not loaded", extra={"plugin": name})
        if not metas:
            return []
        kinds = sorted({kind for meta in metas for kind in meta.reads})
        try:
            records = await load_member_records(vault=self.vault, member_id=member_id, kinds=kinds)
        except KeyMissingError:  # erased meanwhile: nothing to score, nothing to store (ER-07)
            return []
        outcomes = []
        for meta in metas:
            held = await self._held(member_id, meta)
            if held is not None:
                outcomes.append(held)
                continue
            outcome = await scoring.compute_score(
                vault=self.vault,
                runner=self.runner,
                member_id=member_id,
                scorer=meta.name,
                records=records,
                now=now,
            )
            if outcome.status == scoring.STORED:
                # A new current score: queue notices for apps that may read it (sent later
                # by the webhook worker, never here, so scoring does not wait on an app).
                await notices.queue_score_changed(
                    member_id=member_id, scorer=meta.name, changed_at=now or utcnow()
                )
            outcomes.append(outcome)
        return outcomes

    async def _held(self, member_id: uuid.UUID, meta: ScorerMeta) -> scoring.ScoreOutcome | None:
        """With governance on, a version the members have not approved does not run: the
        member's last score stays, labelled with why (as a version they did not accept)."""
        if not self.governance:
            return None
        found = await governance.standing(scorer=meta.name, version=meta.version)
        if found.approved:
            return None
        await versions.label(
            member_id=member_id,
            scorer=meta.name,
            reason=held_reason(meta.title, meta.version, found.reason),
        )
        return scoring.ScoreOutcome(meta.name, scoring.DROPPED, code="scorer_not_approved")

    async def after_sync(self, outcome: SyncOutcome) -> None:
        """The sync engine's hook: rescore the member once new records are committed."""
        await self.recompute_member(member_id=outcome.member_id)

    def register(self, engine: SyncEngine) -> None:
        """Add this flow to a SyncEngine's `after_sync` hooks (once)."""
        if self.after_sync not in engine.after_sync:
            engine.after_sync.append(self.after_sync)


def flow_for(runtime: RuntimeLike) -> ScoringFlow:
    """The process-wide scoring flow (its sandbox starts on first use)."""
    flow = runtime.scoring
    if flow is None:
        sandbox = Sandbox(SandboxConfig.from_settings(runtime.settings))
        flow = runtime.scoring = ScoringFlow(
            vault=runtime.vault,
            runner=sandbox,
            governance=runtime.settings.governance,
            rules=Rules.from_settings(runtime.settings),
            min_sharers=runtime.settings.governance_min_sharers,
        )
        if runtime.jobs is not None:  # rescore after each sync
            flow.register(runtime.jobs.engine)
            flow.queue = runtime.jobs.queue
    return flow


async def close(runtime: RuntimeLike) -> None:
    flow, runtime.scoring = runtime.scoring, None
    if flow is not None:
        await flow.close()
