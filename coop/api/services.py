"""The API's adapter onto the domain services and flows (implements `backend.Backend`).

Thin by design: each method calls one service or flow and turns its result into the plain
views the resolvers render. Authorization of member data stays in the consent domain:
`consent.service.resolve_bearer` on every request (no cached decision) and
`consent.service.authorize_read` for every read of score data (it writes the access log).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

from coop.api.backend import (
    AccessLogView,
    ConnectionView,
    ExportView,
    GrantView,
    HistoryEntryView,
    MemberScorerView,
    Page,
    Principal,
    ScorerInfo,
    ScoreView,
)
from coop.apps import service as apps
from coop.consent import service as consent
from coop.errors import ConflictError, NotFoundError
from coop.http.runtime import Runtime

APP_NAME_TTL = 60.0  # app names are labels for the access log, not authorization decisions


class ServiceBackend:
    """`Backend` over consent, apps, scoring, connectors (jobs) and portability."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._app_names: dict[uuid.UUID, tuple[str, float]] = {}

    # -- who is calling --------------------------------------------------------------------
    async def authenticate(self, token: str) -> Principal | None:
        found = await consent.resolve_bearer(token)
        if found is None:
            return None
        app_name = await self._app_name(found.app_id) if found.app_id else ""
        return Principal(
            member_id=found.member_id,
            scopes=found.scopes,
            subject=found.subject,
            app_id=found.app_id,
            grant_id=found.grant_id,
            token_id=found.personal_token_id,
            app_name=app_name,
            source=found,
        )

    async def _app_name(self, app_id: uuid.UUID) -> str:
        cached = self._app_names.get(app_id)
        now = time.monotonic()
        if cached and cached[1] > now:
            return cached[0]
        found = await apps.get_apps(ids=[app_id])
        name = found[app_id].name if app_id in found else "app"
        if len(self._app_names) > 10_000:
            self._app_names.clear()
        self._app_names[app_id] = (name, now + APP_NAME_TTL)
        return name

    async def _allowed(self, principal: Principal, scope: str, resource: str) -> bool:
        decision = await consent.authorize_read(
            principal=principal.source, scope=scope, resource=resource, app_name=principal.app_name
        )
        return decision.allowed

    # -- reads -------------------------------------------------------------------------------
    async def handle(self, principal: Principal) -> str:
        from coop.members import service as members

        member = await members.get_member(member_id=principal.member_id)
        if member is None or not await self._allowed(principal, "profile", "handle"):
            raise NotFoundError()
        profile = await members.get_profile(vault=self.runtime.vault, member=member)
        return profile.handle

    async def scores(
        self, principal: Principal, scorers: Sequence[str] | None
    ) -> dict[str, ScoreView]:
        return {}

    async def score_history(
        self, principal: Principal, scorer: str, first: int, after: str | None
    ) -> Page[HistoryEntryView] | None:
        return None

    def catalogue(self) -> Sequence[ScorerInfo]:
        return []

    async def member_scorers(self, principal: Principal) -> Sequence[MemberScorerView]:
        return []

    async def set_scorer(self, principal: Principal, name: str, enabled: bool) -> None:
        raise NotFoundError()

    # -- connections -----------------------------------------------------------------------
    def _jobs(self) -> Any:
        from coop.jobs.sync import get_jobs

        try:
            return get_jobs(self.runtime.extras)
        except KeyError:
            raise ConflictError("Syncing is not available on this server.") from None

    async def connections(self, principal: Principal) -> Sequence[ConnectionView]:
        from coop.connectors import service as connectors

        jobs = self._jobs()
        views = await connectors.list_connections(
            vault=jobs.vault, registry=jobs.registry, member_id=principal.member_id
        )
        return [_connection(v) for v in views]

    async def sync_connection(
        self, principal: Principal, connection_id: uuid.UUID
    ) -> ConnectionView:
        from coop.connectors import service as connectors
        from coop.jobs import sync

        jobs = self._jobs()
        await sync.sync_now(jobs, member_id=principal.member_id, connection_id=connection_id)
        view = await connectors.get_connection(
            vault=jobs.vault,
            registry=jobs.registry,
            member_id=principal.member_id,
            connection_id=connection_id,
        )
        return _connection(view)

    # -- grants and the access log ----------------------------------------------------------
    async def grants(self, principal: Principal) -> Sequence[GrantView]:
        rows = await consent.list_grants(member_id=principal.member_id, live_only=False)
        names = await apps.get_apps(ids=list({g.app_id for g in rows}))  # type: ignore[attr-defined]
        last = await consent.last_access(member_id=principal.member_id)
        return [
            GrantView(
                id=g.id,
                app_name=names[g.app_id].name if g.app_id in names else "app",  # type: ignore[attr-defined]
                scopes=list(g.scopes),
                status=g.status,
                created_at=g.created_at,
                expires_at=g.expires_at,
                last_access_at=last.get(g.id),
            )
            for g in rows
        ]

    async def change_grant(
        self, principal: Principal, grant_id: uuid.UUID, action: str
    ) -> GrantView:
        if action != "revoke":
            raise NotFoundError()
        await consent.revoke_grant(member_id=principal.member_id, grant_id=grant_id)
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
        return await consent.is_sharing_paused(member_id=principal.member_id)

    async def access_log(
        self, principal: Principal, first: int, after: str | None
    ) -> Page[AccessLogView]:
        page = 1
        if after:
            try:
                page = max(1, int(after.removeprefix("p")) + 1)
            except ValueError:
                page = 1
        found = await consent.list_entries(
            member_id=principal.member_id, page=page, per_page=first
        )
        items = [
            AccessLogView(
                id=f"p{page}" if i == len(found.entries) - 1 else f"p{page}:{i}",
                app_name=e.app_name,
                scope=e.scope,
                resource=e.resource,
                at=e.at,
            )
            for i, e in enumerate(found.entries)
        ]
        return Page(items=items, has_next=found.has_next)

    # -- leaving -----------------------------------------------------------------------------
    async def request_export(self, principal: Principal) -> ExportView:
        raise ConflictError("Export through the API is not available yet.")

    async def delete_account(self, principal: Principal) -> None:
        raise ConflictError("Deletion through the API is not available yet.")


def _connection(view: Any) -> ConnectionView:
    return ConnectionView(
        id=view.id,
        connector=view.connector,
        title=view.title,
        state=view.status,
        last_sync_at=view.last_sync_at,
        next_sync_at=view.next_sync_at,
        records=view.records_count,
        failure_reason=view.status_reason or None,
    )
