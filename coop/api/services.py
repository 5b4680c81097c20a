"""The API's adapter onto the domain services and flows (implements `backend.Backend`).

Thin by design: each method calls one service or flow and turns its result into the plain
views the resolvers render. Authorization of member data stays in the consent domain:
`consent.service.resolve_bearer` on every request (no cached decision; one statement that
also reads the member's current scores) and `consent.service.authorize_read` for every read
of score data (it writes the access log).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import replace

from coop.api.backend import (
    AccessLogView,
    ConnectionView,
    ExplanationView,
    ExportView,
    GrantView,
    HistoryEntryView,
    MemberScorerView,
    Page,
    ProposalEntry,
    ScorerInfo,
    ScoreStateView,
)
from coop.api.convert import (
    change_view,
    connection_view,
    explanation_view,
    history_entry,
    offset_of,
    scorer_info,
)
from coop.connectors import health
from coop.connectors import service as connectors
from coop.consent import overview
from coop.consent import service as consent
from coop.consent.bearer import CurrentScore, Principal
from coop.consent.disclosure import (
    ATLEAST,
    ScoreScope,
    disclosure,
    history_readable,
    scorers_of,
)
from coop.errors import CoopError, NotFoundError
from coop.http.runtime import Runtime
from coop.jobs import sync
from coop.jobs.scoring import ScoringFlow, flow_for
from coop.jobs.sync import Jobs, get_jobs
from coop.members import service as members
from coop.portability import erase, links
from coop.scoring import reads as score_reads
from coop.scoring import service as scoring
from coop.scoring import versions
from coop.scoring.validate import ScorerMeta
from coop.types import together

META_TTL = 30.0  # seconds; scorer metadata changes only when plugins are reloaded


def _levelled(view: CurrentScore, meta: ScorerMeta, level: ScoreScope) -> CurrentScore:
    """The view with the scorer's range and bands, and the grant's threshold if it has one."""
    return replace(
        view,
        range=(float(meta.range[0]), float(meta.range[1])),
        bands=tuple(meta.bands),
        threshold=level.threshold_value if level.level == ATLEAST else None,
    )


class ServiceBackend:
    """`Backend` over consent, apps, scoring, connectors (jobs) and portability."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._metas: dict[str, tuple[ScorerMeta | None, float]] = {}

    # -- who is calling --------------------------------------------------------------------
    async def authenticate(self, token: str, *, rate_limit: int = 0) -> Principal | None:
        """Who is calling, with the member's current scores: consent's one decision (and,
        with `rate_limit` on PostgreSQL, the shared rate-limit bucket charged with it)."""
        return await consent.resolve_bearer(token, rate_limit=rate_limit)

    async def _allowed(self, principal: Principal, scope: str, resource: str) -> bool:
        decision = await consent.authorize_read(principal=principal, scope=scope, resource=resource)
        return decision.allowed

    # -- reads -------------------------------------------------------------------------------
    async def handle(self, principal: Principal) -> str:
        member = await members.get_member(member_id=principal.member_id)
        if member is None or not await self._allowed(principal, "profile", "handle"):
            raise NotFoundError()
        profile = await members.get_profile(vault=self.runtime.vault, member=member)
        return profile.handle

    def _flow(self) -> ScoringFlow:
        return flow_for(self.runtime)

    async def _meta(self, name: str) -> ScorerMeta | None:
        """The loaded scorer's metadata (cached briefly: it changes only with the plugins)."""
        now = time.monotonic()
        cached = self._metas.get(name)
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            meta: ScorerMeta | None = await self._flow().meta(name)
        except CoopError:
            meta = None
        self._metas[name] = (meta, now + META_TTL)
        return meta

    async def scores(
        self, principal: Principal, scorers: Sequence[str] | None
    ) -> dict[str, CurrentScore]:
        """Current scores the token may read. A scorer outside the grant, not enabled or
        without a score is simply absent: the caller cannot tell which (plausible refusal).
        Every score returned was allowed, and logged, by consent's one check."""
        granted = scorers_of(principal.scopes)
        wanted = sorted(granted if scorers is None else granted & set(scorers))
        if not wanted:
            return {}
        # No separate "enabled?" query: disabling a scorer deletes its scores in the same
        # transaction, so a stored score is the proof that it is enabled.
        views = [principal.scores[name] for name in wanted if name in principal.scores]
        loaded = []
        for view in views:
            meta = await self._meta(view.scorer)
            if meta is not None:
                loaded.append((view, meta))
        # Not loaded on this server right now: treated as no score. The consent checks run
        # together so that their access-log entries share one commit instead of one each;
        # each is logged under the granted level's scope (the level the app reads at).
        levelled = [
            (view, meta, level)
            for view, meta in loaded
            if (level := disclosure(principal.scopes, view.scorer)) is not None
        ]
        checks = [
            self._allowed(principal, level.scope, f"score:{view.scorer}")
            for view, _, level in levelled
        ]
        allowed = await together(checks)
        return {
            view.scorer: _levelled(view, meta, level)
            for (view, meta, level), ok in zip(levelled, allowed, strict=True)
            if ok
        }

    async def explain(
        self, principal: Principal, scores: Sequence[CurrentScore]
    ) -> dict[uuid.UUID, ExplanationView]:
        """The explanations of scores already read (and logged): two round trips in all."""
        opened = await score_reads.read_explanations(
            vault=self.runtime.vault,
            member_id=principal.member_id,
            score_ids=[s.id for s in scores],
        )
        return {score_id: explanation_view(e) for score_id, e in opened.items()}

    async def score_states(
        self, principal: Principal, scores: Sequence[CurrentScore]
    ) -> dict[uuid.UUID, ScoreStateView]:
        """Changes and staleness of current scores already read (and logged)."""
        states = await score_reads.current_states(
            vault=self.runtime.vault,
            member_id=principal.member_id,
            score_ids=[s.id for s in scores],
        )
        return {
            score_id: ScoreStateView(
                change=None if s.change is None else change_view(s.change),
                stale=bool(s.stale_reason),
            )
            for score_id, s in states.items()
        }

    async def score_history(
        self,
        principal: Principal,
        scorer: str,
        first: int,
        after: str | None,
        *,
        contributions: bool = True,
    ) -> Page[HistoryEntryView] | None:
        """A page of an enabled scorer's history (None, logged nothing: not granted, not
        enabled, no history); its explanations opened only for `contributions`."""
        scope = f"score:{scorer}:history"
        if not history_readable(principal.scopes, scorer):
            return None
        skip = offset_of(after)
        rows = await score_reads.read_history(
            vault=self.runtime.vault,
            member_id=principal.member_id,
            scorer=scorer,
            offset=skip,
            limit=first + 1,
            explain=contributions,
        )
        exists = bool(rows)
        if not rows and skip:  # past the end: an empty page, if there is any history at all
            exists = bool(
                await score_reads.read_history(
                    vault=self.runtime.vault, member_id=principal.member_id, scorer=scorer, limit=1
                )
            )
        if not exists or not await self._allowed(principal, scope, scope):
            return None
        items = [history_entry(view, skip + i + 1) for i, view in enumerate(rows[:first])]
        return Page(items=items, has_next=len(rows) > first)

    async def catalogue(self) -> Sequence[ScorerInfo]:
        try:
            metas = await self._flow().available()
        except CoopError:
            return []
        return [scorer_info(m) for m in sorted(metas, key=lambda m: m.name)]

    async def member_scorers(self, principal: Principal) -> Sequence[MemberScorerView]:
        """The catalogue, each scorer with whether the member enabled it and what a waiting
        new version reads more: the scorers' metadata once, the member's consents in one
        statement (`versions.member_settings`)."""
        try:
            metas = sorted(await self._flow().available(), key=lambda m: m.name)
        except CoopError:
            return []
        found = await versions.member_settings(member_id=principal.member_id, metas=metas)
        return [
            MemberScorerView(
                info=scorer_info(meta),
                enabled=meta.name in found.enabled,
                awaiting_consent=(
                    found.pending[meta.name].gap.what_is_new() if meta.name in found.pending else ""
                ),
            )
            for meta in metas
        ]

    async def accept_scorer_version(self, principal: Principal, name: str) -> None:
        if await self._meta(name) is None:
            raise NotFoundError()
        await self._flow().accept_version(member_id=principal.member_id, scorer=name, wait=False)

    async def keep_scorer_version(self, principal: Principal, name: str) -> None:
        if await self._meta(name) is None:
            raise NotFoundError()
        await self._flow().keep_current(member_id=principal.member_id, scorer=name)

    async def set_scorer(self, principal: Principal, name: str, enabled: bool) -> None:
        if await self._meta(name) is None:
            raise NotFoundError()
        if enabled:
            await self._flow().enable(member_id=principal.member_id, scorer=name, wait=False)
        else:
            await scoring.disable_scorer(member_id=principal.member_id, scorer=name)

    # -- connections -----------------------------------------------------------------------
    def _jobs(self) -> Jobs:
        return get_jobs(self.runtime)

    async def connections(self, principal: Principal) -> Sequence[ConnectionView]:
        found = await health.list_health(
            registry=self._jobs().registry, member_id=principal.member_id
        )
        return [
            ConnectionView(
                id=c.id,
                connector=c.connector,
                title=c.title,
                state=c.status,
                last_sync_at=c.last_sync_at,
                next_sync_at=c.next_sync_at,
                records=c.records_count,
                failure_reason=c.status_reason or None,
            )
            for c in found
        ]

    async def sync_connection(
        self, principal: Principal, connection_id: uuid.UUID
    ) -> ConnectionView:
        jobs = self._jobs()
        await sync.sync_now(jobs, member_id=principal.member_id, connection_id=connection_id)
        view = await connectors.get_connection(
            vault=jobs.vault,
            registry=jobs.registry,
            member_id=principal.member_id,
            connection_id=connection_id,
        )
        return connection_view(view)

    # -- grants and the access log ----------------------------------------------------------
    async def grants(self, principal: Principal) -> Sequence[GrantView]:
        return [
            GrantView(
                id=g.id,
                app_name=g.app_name,
                scopes=list(g.scopes),
                status=g.status,
                created_at=g.created_at,
                expires_at=g.expires_at,
                last_access_at=g.last_access_at,
                held=g.held,
            )
            for g in await overview.grant_summaries(member_id=principal.member_id)
        ]

    async def change_grant(
        self, principal: Principal, grant_id: uuid.UUID, action: str
    ) -> GrantView:
        change = {
            "revoke": consent.revoke_grant,
            "pause": consent.pause_grant,
            "resume": consent.resume_grant,
        }.get(action)
        if change is None:
            raise NotFoundError()
        await change(member_id=principal.member_id, grant_id=grant_id)
        for view in await self.grants(principal):
            if view.id == grant_id:
                return view
        raise NotFoundError()

    async def set_sharing_paused(self, principal: Principal, paused: bool) -> None:
        if paused:
            await consent.pause_sharing(member_id=principal.member_id)
        else:
            await consent.resume_sharing(member_id=principal.member_id)

    async def sharing_paused(self, principal: Principal) -> bool:
        return await overview.sharing_paused(member_id=principal.member_id)

    async def access_log(
        self, principal: Principal, first: int, after: str | None
    ) -> Page[AccessLogView]:
        """Newest first. Cursors are 1-based positions ("o<n>")."""
        skip = offset_of(after)
        lines = await overview.log_lines(
            member_id=principal.member_id, offset=skip, limit=first + 1
        )
        entries, has_next = lines[:first], len(lines) > first
        items = [
            AccessLogView(
                id=f"o{skip + i + 1}",
                app_name=e.app_name,
                scope=e.scope,
                resource=e.resource,
                at=e.at,
            )
            for i, e in enumerate(entries)
        ]
        return Page(items=items, has_next=has_next)

    # -- leaving -----------------------------------------------------------------------------
    async def request_export(self, principal: Principal) -> ExportView:
        link = await links.request_export(vault=self.runtime.vault, member_id=principal.member_id)
        return ExportView(download_path=link.path, expires_at=link.expires_at)

    async def proposals(self, principal: Principal, state: str | None) -> Sequence[ProposalEntry]:
        from coop.governance import service as governance

        found = await governance.list_for_member(
            vault=self.runtime.vault, member_id=principal.member_id, state=state
        )
        return [ProposalEntry(m.proposal, m.vote.eligible, m.vote.choice) for m in found]

    async def cast_vote(
        self, principal: Principal, proposal_id: uuid.UUID, choice: str
    ) -> ProposalEntry:
        from coop.errors import GovernanceOffError
        from coop.governance import service as governance

        if not self.runtime.settings.governance:
            raise GovernanceOffError()
        voted = await governance.vote_for_member(
            vault=self.runtime.vault,
            member_id=principal.member_id,
            proposal_id=proposal_id,
            choice=choice,
        )
        return ProposalEntry(voted.proposal, voted.vote.eligible, voted.vote.choice)

    async def delete_account(self, principal: Principal) -> None:
        jobs = self.runtime.jobs
        await erase.erase_member(
            vault=self.runtime.vault,
            settings=self.runtime.settings,
            member_id=principal.member_id,
            registry=jobs.registry if jobs is not None else None,
        )
