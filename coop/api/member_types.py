"""Self-service types (personal access tokens with `member:manage`) and typed mutation errors.

Every mutation answers with a union of a success type and the error type of its area; each
area has one error-code enum (saleor style). A missing scope is not a typed error: the field
is null with `FORBIDDEN`, as everywhere else.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry

from coop.api import ids
from coop.api.backend import AccessLogView, ConnectionView, GrantView, MemberScorerView
from coop.api.types import Node, PageInfo, Scorer
from coop.consent import disclosure


@strawberry.enum(description="A connection's health.")
class ConnectionState(Enum):
    OK = "ok"
    SYNCING = "syncing"
    NEEDS_REAUTHORIZATION = "needs_reauthorization"
    FAILING = "failing"
    OTHER = "other"


@strawberry.type(description="A data source the member connected, and its health.")
class Connection(Node):
    connector: str = strawberry.field(description="The connector's name (e.g. `feed`).")
    title: str = strawberry.field(description="A human title for the source.")
    state: ConnectionState = strawberry.field(description="Health: ok, syncing, failing…")
    last_sync_at: datetime | None = strawberry.field(description="When it last synced.")
    next_sync_at: datetime | None = strawberry.field(description="When it syncs next.")
    records: int = strawberry.field(description="How many records it collected.")
    failure_reason: str | None = strawberry.field(description="Why it fails, when it does.")

    @staticmethod
    def of(view: ConnectionView) -> Connection:
        try:
            state = ConnectionState(view.state)
        except ValueError:
            state = ConnectionState.OTHER
        return Connection(
            id=strawberry.ID(ids.encode("Connection", str(view.id))),
            connector=view.connector,
            title=view.title,
            state=state,
            last_sync_at=view.last_sync_at,
            next_sync_at=view.next_sync_at,
            records=view.records,
            failure_reason=view.failure_reason,
        )


@strawberry.enum(description="Where a grant stands.")
class GrantStatus(Enum):
    ACTIVE = "active"
    PAUSED = "paused"
    REVOKED = "revoked"
    EXPIRED = "expired"
    OTHER = "other"


@strawberry.enum(description="How precisely a grant lets an app learn a score.")
class DisclosureLevel(Enum):
    EXACT = "exact"
    BAND = "band"
    AT_LEAST = "atleast"


@strawberry.type(description="One score a grant lets the app read, and how precisely.")
class GrantLevel:
    scorer: str = strawberry.field(description="The scorer's name.")
    level: DisclosureLevel = strawberry.field(
        description="EXACT: the value and why; BAND: only its band; AT_LEAST: only a yes or no."
    )
    threshold: float | None = strawberry.field(
        description="At AT_LEAST, the number the app learns whether the score reaches."
    )
    history: bool = strawberry.field(
        description="Whether the app may also read the score's history (EXACT only)."
    )

    @staticmethod
    def all_of(scopes: list[str]) -> list[GrantLevel]:
        history = {
            p.scorer
            for p in map(disclosure.parse_score_scope, scopes)
            if p and p.level == disclosure.HISTORY
        }
        levels = []
        for scorer in sorted(disclosure.scorers_of(scopes)):
            parsed = disclosure.disclosure(scopes, scorer)
            assert parsed is not None
            levels.append(
                GrantLevel(
                    scorer=scorer,
                    level=DisclosureLevel(parsed.level),
                    threshold=parsed.threshold_value if parsed.threshold else None,
                    history=scorer in history and parsed.level == disclosure.EXACT,
                )
            )
        return levels


@strawberry.type(description="What the member allowed one app to read, until when.")
class Grant(Node):
    app_name: str = strawberry.field(description="The app's registered name.")
    scopes: list[str] = strawberry.field(description="The scopes granted.")
    levels: list[GrantLevel] = strawberry.field(
        description="Each score granted and how precisely the app may learn it."
    )
    status: GrantStatus = strawberry.field(description="Active, paused, revoked or expired.")
    created_at: datetime = strawberry.field(description="When the member granted it.")
    expires_at: datetime | None = strawberry.field(description="When it ends by itself.")
    last_access_at: datetime | None = strawberry.field(description="The app's last read.")
    paused_by_you: bool = strawberry.field(
        description=(
            "Whether you paused this grant by itself (`pauseGrant`): it stays paused when "
            "all sharing resumes, until `resumeGrant`."
        )
    )

    @staticmethod
    def of(view: GrantView) -> Grant:
        try:
            status = GrantStatus(view.status)
        except ValueError:
            status = GrantStatus.OTHER
        return Grant(
            id=strawberry.ID(ids.encode("Grant", str(view.id))),
            app_name=view.app_name,
            scopes=list(view.scopes),
            levels=GrantLevel.all_of(list(view.scopes)),
            status=status,
            created_at=view.created_at,
            expires_at=view.expires_at,
            last_access_at=view.last_access_at,
            paused_by_you=view.held,
        )


@strawberry.type(description="A scorer and whether the member enabled it.")
class MemberScorer:
    scorer: Scorer = strawberry.field(description="The scorer as the catalogue lists it.")
    enabled: bool = strawberry.field(description="Whether it runs on the member's data.")
    awaiting_consent: str | None = strawberry.field(
        description=(
            "What the installed version reads beyond the version you accepted, in words; "
            "null when nothing waits. Until you call `acceptScorerVersion` it does not run."
        )
    )

    @staticmethod
    def of(view: MemberScorerView) -> MemberScorer:
        return MemberScorer(
            scorer=Scorer.of(view.info),
            enabled=view.enabled,
            awaiting_consent=view.awaiting_consent or None,
        )


@strawberry.type(description="One read of the member's data by an app or a personal token.")
class AccessLogEntry:
    app_name: str = strawberry.field(description="Who read (the app, or the token's name).")
    scope: str = strawberry.field(description="Under which scope.")
    resource: str = strawberry.field(description="What was read.")
    at: datetime = strawberry.field(description="When (UTC).")

    @staticmethod
    def of(view: AccessLogView) -> AccessLogEntry:
        return AccessLogEntry(
            app_name=view.app_name, scope=view.scope, resource=view.resource, at=view.at
        )


@strawberry.type(description="An edge of an access log page.")
class AccessLogEdge:
    cursor: str = strawberry.field(description="This entry's cursor.")
    node: AccessLogEntry = strawberry.field(description="The entry.")


@strawberry.type(description="A page of the access log, newest first (Relay connection).")
class AccessLogConnection:
    edges: list[AccessLogEdge] = strawberry.field(description="The entries of this page.")
    page_info: PageInfo = strawberry.field(description="Where this page ends.")


# -- typed errors, one enum per area -----------------------------------------------------


@strawberry.enum(description="Why a connections mutation failed.")
class ConnectionErrorCode(Enum):
    NOT_FOUND = "not_found"
    UNAVAILABLE = "unavailable"
    INVALID = "invalid"


@strawberry.type(description="A connections mutation failed.")
class ConnectionError:
    code: ConnectionErrorCode = strawberry.field(description="Stable reason.")
    message: str = strawberry.field(description="What happened, in plain words.")


@strawberry.enum(description="Why a scorers mutation failed.")
class ScorerErrorCode(Enum):
    NOT_FOUND = "not_found"
    INVALID = "invalid"


@strawberry.type(description="A scorers mutation failed.")
class ScorerError:
    code: ScorerErrorCode = strawberry.field(description="Stable reason.")
    message: str = strawberry.field(description="What happened, in plain words.")


@strawberry.enum(description="Why a grants mutation failed.")
class GrantErrorCode(Enum):
    NOT_FOUND = "not_found"
    INVALID_STATE = "invalid_state"


@strawberry.type(description="A grants mutation failed.")
class GrantError:
    code: GrantErrorCode = strawberry.field(description="Stable reason.")
    message: str = strawberry.field(description="What happened, in plain words.")


@strawberry.enum(description="Why an account mutation failed.")
class AccountErrorCode(Enum):
    CONFIRMATION_MISMATCH = "confirmation_mismatch"
    UNAVAILABLE = "unavailable"
    INVALID = "invalid"


@strawberry.type(description="An account mutation failed.")
class AccountError:
    code: AccountErrorCode = strawberry.field(description="Stable reason.")
    message: str = strawberry.field(description="What happened, in plain words.")


# -- successes ---------------------------------------------------------------------------


@strawberry.type(description="The sync was queued.")
class SyncConnectionSuccess:
    connection: Connection = strawberry.field(description="The connection, now syncing.")


@strawberry.type(description="The scorer setting was saved.")
class SetScorerSuccess:
    scorer: MemberScorer = strawberry.field(description="The scorer and its new setting.")


@strawberry.type(description="The grant was changed.")
class ChangeGrantSuccess:
    grant: Grant = strawberry.field(description="The grant after the change.")


@strawberry.type(description="Sharing was paused or resumed for every grant at once.")
class SetSharingSuccess:
    paused: bool = strawberry.field(description="Whether sharing is now paused.")


@strawberry.type(description="The export is ready to download.")
class RequestExportSuccess:
    download_path: str = strawberry.field(
        description=(
            "Path (relative to the server's address) of the ZIP archive. Single use, valid "
            "until `expiresAt`, and fetched with the same personal token as a bearer."
        )
    )
    expires_at: datetime = strawberry.field(description="When the link stops working (UTC).")


@strawberry.type(description="The account and everything in it is gone.")
class DeleteAccountSuccess:
    deleted_at: datetime = strawberry.field(description="When the deletion committed (UTC).")


SyncConnectionResult = Annotated[
    SyncConnectionSuccess | ConnectionError,
    strawberry.union("SyncConnectionResult", description="What `syncConnection` returns."),
]
SetScorerResult = Annotated[
    SetScorerSuccess | ScorerError,
    strawberry.union(
        "SetScorerResult",
        description="What `enableScorer`, `disableScorer` and `acceptScorerVersion` return.",
    ),
]
ChangeGrantResult = Annotated[
    ChangeGrantSuccess | GrantError,
    strawberry.union("ChangeGrantResult", description="What `revokeGrant` returns."),
]
SetSharingResult = Annotated[
    SetSharingSuccess | GrantError,
    strawberry.union("SetSharingResult", description="What `setSharingPaused` returns."),
]
RequestExportResult = Annotated[
    RequestExportSuccess | AccountError,
    strawberry.union("RequestExportResult", description="What `requestExport` returns."),
]
DeleteAccountResult = Annotated[
    DeleteAccountSuccess | AccountError,
    strawberry.union("DeleteAccountResult", description="What `deleteAccount` returns."),
]
