"""What the API needs from the domain services, as plain values (the resolvers' only port).

`coop.api.services.ServiceBackend` implements it on top of consent, scoring, connectors and
portability; the resolvers never see a model or a query.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

# The caller and the scores it reads are consent's own types (one Principal, one score).
from coop.consent.bearer import CurrentScore, Principal
from coop.governance.service import ProposalView

T = TypeVar("T")


class ContributionView(Protocol):
    """A contribution as the API renders it: the domain's own (coop.scoring.service), not
    copied per read. Its record id is never rendered: the API's `Contribution` has amount,
    reason and the scorer's opaque ref only."""

    @property
    def amount(self) -> float: ...

    @property
    def reason(self) -> str: ...

    @property
    def ref(self) -> str | None: ...


@dataclass(frozen=True)
class ExplanationView:
    contributions: Sequence[ContributionView]
    reasons: Sequence[str]
    breakdown: Sequence[tuple[str, float]] = ()  # (name, value) in the scorer's order


@dataclass(frozen=True)
class CauseView:
    kind: str  # scorer_version, new_data, removed_data, time_passed, unexplained
    amount: float
    reason: str
    record: str | None  # the same opaque reference as ContributionView.ref


@dataclass(frozen=True)
class ChangeView:
    previous: float
    delta: float
    causes: Sequence[CauseView]


@dataclass(frozen=True)
class ScoreStateView:
    """What a current score says about itself beyond its value: its change and staleness."""

    change: ChangeView | None
    stale: bool


@dataclass(frozen=True)
class HistoryEntryView:
    id: str  # opaque, stable: the cursor of this entry
    scorer_version: str
    value: float
    computed_at: datetime
    change: str  # first, new_data, data_aged_out, version_changed, unchanged, other
    delta: float | None
    contributions: Sequence[ContributionView] = ()


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    has_next: bool


@dataclass(frozen=True)
class ScorerInfo:
    name: str
    version: str
    title: str
    description: str
    reads: Sequence[str]
    range: tuple[float, float]
    homepage: str = ""
    # Kinds read with only some fields, in `reads` order (ScorerMeta.fields).
    fields: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class MemberScorerView:
    """A scorer and whether this member enabled it (self-service)."""

    info: ScorerInfo
    enabled: bool
    awaiting_consent: str = ""  # what a new version reads more, in words


@dataclass(frozen=True)
class ConnectionView:
    id: uuid.UUID
    connector: str
    title: str
    state: str  # ok, syncing, needs_reauthorization, failing
    last_sync_at: datetime | None
    next_sync_at: datetime | None
    records: int
    failure_reason: str | None = None


@dataclass(frozen=True)
class GrantView:
    id: uuid.UUID
    app_name: str
    scopes: Sequence[str]
    status: str  # active, paused, revoked, expired
    created_at: datetime
    expires_at: datetime | None
    last_access_at: datetime | None = None
    held: bool = False  # paused by the member for this app alone


@dataclass(frozen=True)
class AccessLogView:
    id: str
    app_name: str
    scope: str
    resource: str
    at: datetime


@dataclass(frozen=True)
class ExportView:
    download_path: str  # relative to COOP_ISSUER; single use, needs the same member's token
    expires_at: datetime


@dataclass(frozen=True)
class ProposalEntry:
    """A proposal as one member sees it: with whether they are on its roll and their vote."""

    proposal: ProposalView
    eligible: bool
    my_vote: str | None


class Backend(Protocol):
    """The services the API calls. Every read of score data goes through consent and is
    logged; every method raises CoopError subclasses for expected failures."""

    async def authenticate(self, token: str, *, rate_limit: int = 0) -> Principal | None: ...

    async def handle(self, principal: Principal) -> str: ...

    async def scores(
        self, principal: Principal, scorers: Sequence[str] | None
    ) -> dict[str, CurrentScore]: ...

    async def explain(
        self, principal: Principal, scores: Sequence[CurrentScore]
    ) -> dict[uuid.UUID, ExplanationView]: ...

    async def score_states(
        self, principal: Principal, scores: Sequence[CurrentScore]
    ) -> dict[uuid.UUID, ScoreStateView]: ...

    async def score_history(
        self,
        principal: Principal,
        scorer: str,
        first: int,
        after: str | None,
        *,
        contributions: bool = True,
    ) -> Page[HistoryEntryView] | None: ...

    async def catalogue(self) -> Sequence[ScorerInfo]: ...

    async def member_scorers(self, principal: Principal) -> Sequence[MemberScorerView]: ...

    async def set_scorer(self, principal: Principal, name: str, enabled: bool) -> None: ...

    async def accept_scorer_version(self, principal: Principal, name: str) -> None: ...

    async def keep_scorer_version(self, principal: Principal, name: str) -> None: ...

    async def connections(self, principal: Principal) -> Sequence[ConnectionView]: ...

    async def sync_connection(
        self, principal: Principal, connection_id: uuid.UUID
    ) -> ConnectionView: ...

    async def grants(self, principal: Principal) -> Sequence[GrantView]: ...

    async def change_grant(
        self, principal: Principal, grant_id: uuid.UUID, action: str
    ) -> GrantView: ...

    async def set_sharing_paused(self, principal: Principal, paused: bool) -> None: ...

    async def sharing_paused(self, principal: Principal) -> bool: ...

    async def access_log(
        self, principal: Principal, first: int, after: str | None
    ) -> Page[AccessLogView]: ...

    async def request_export(self, principal: Principal) -> ExportView: ...

    async def delete_account(self, principal: Principal) -> None: ...

    async def proposals(
        self, principal: Principal, state: str | None
    ) -> Sequence[ProposalEntry]: ...

    async def cast_vote(
        self, principal: Principal, proposal_id: uuid.UUID, choice: str
    ) -> ProposalEntry: ...
