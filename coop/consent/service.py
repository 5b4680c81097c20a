"""The consent service: who is calling (`resolve_bearer`) and the ONE check every read of
member data by a token goes through (`authorize_read`), which also writes the access log.

Nothing here is cached: each request reads the grant's live state, so a revocation, a pause
or an account deletion refuses the very next request.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from coop.types import utcnow

from . import accesslog
from .accesslog import LogPage, last_access, list_entries, list_log_apps
from .accesslog import purge_older_than as purge_access_log
from .grants import (
    agree_to_terms,
    create_grant,
    expire_due_grants,
    is_live,
    is_sharing_paused,
    list_events,
    list_grants,
    lower_score,
    narrow_grant,
    pause_grant,
    pause_sharing,
    resume_grant,
    resume_sharing,
    revoke_grant,
    terms_pending,
)
from .models import OAuthToken, PersonalToken
from .personal import (
    PAT_PREFIX,
    create_personal_token,
    list_personal_tokens,
    revoke_personal_token,
)
from .tokens import ACCESS_PREFIX, token_hash
from .tokens import purge_stale as purge_stale_tokens

# The consent domain's public API (the grant, token and log functions are re-exported).
__all__ = [
    "LogPage",
    "Principal",
    "ReadDecision",
    "agree_to_terms",
    "authorize_read",
    "create_grant",
    "create_personal_token",
    "expire_due_grants",
    "is_sharing_paused",
    "last_access",
    "list_entries",
    "list_events",
    "list_grants",
    "list_log_apps",
    "list_personal_tokens",
    "lower_score",
    "narrow_grant",
    "pause_grant",
    "pause_sharing",
    "purge_access_log",
    "purge_stale_tokens",
    "resolve_bearer",
    "resume_grant",
    "resume_sharing",
    "revoke_grant",
    "revoke_personal_token",
    "terms_pending",
]

MAX_TOKEN_LENGTH = 200
OWNER_LABEL = "you"


@dataclass(frozen=True)
class Principal:
    """Who a bearer token speaks for.

    kind "app": a third-party app under a grant; `subject` is the pairwise id the app
    sees (never `member_id`). kind "personal": the member with a personal access token.
    """

    kind: str
    member_id: uuid.UUID
    scopes: frozenset[str]
    subject: str
    expires_at: datetime | None
    grant_id: uuid.UUID | None = None
    app_id: uuid.UUID | None = None
    client_id: str | None = None
    personal_token_id: uuid.UUID | None = None
    app_name: str | None = None

    @property
    def is_owner(self) -> bool:
        return self.kind == "personal"


@dataclass(frozen=True)
class ReadDecision:
    """The answer of `authorize_read`. A refusal never says why: "not granted", "paused" and
    "no such data" must look the same to the caller (plausible refusal)."""

    allowed: bool
    scope: str

    def __bool__(self) -> bool:
        return self.allowed


async def resolve_bearer(token: str) -> Principal | None:
    """The principal behind an access token or personal access token, or None when it is
    unknown, expired, revoked, its grant is not active (paused, revoked, expired) or the
    member is gone. One query: token joined to its grant (member deletion cascades)."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    now = utcnow()
    if token.startswith(PAT_PREFIX):
        pat = await PersonalToken.get_or_none(token_hash=token_hash(token))
        if pat is None or pat.revoked_at is not None:
            return None
        if pat.expires_at is not None and pat.expires_at <= now:
            return None
        return Principal(
            kind="personal",
            member_id=pat.member_id,
            scopes=frozenset(pat.scopes),
            subject=str(pat.member_id),
            expires_at=pat.expires_at,
            personal_token_id=pat.id,
        )
    if not token.startswith(ACCESS_PREFIX):
        return None
    row = await OAuthToken.get_or_none(access_hash=token_hash(token)).select_related(
        "grant", "grant__app"
    )
    if row is None or row.revoked_at is not None or row.access_expires_at <= now:
        return None
    grant = row.grant
    if not is_live(grant, now):
        return None
    return Principal(
        kind="app",
        member_id=grant.member_id,
        scopes=frozenset(row.scopes),
        subject=grant.subject,
        expires_at=row.access_expires_at,
        grant_id=grant.id,
        app_id=grant.app_id,
        client_id=row.client_id,
        app_name=grant.app.name,  # type: ignore[attr-defined]
    )


async def authorize_read(*, principal: Principal, scope: str, resource: str) -> ReadDecision:
    """May `principal` read `resource` under `scope`? Logs every allowed read durably
    (group commit, see consent.accesslog) before returning.

    Call it once per resource read, after `resolve_bearer` in the same request, and answer
    a refusal exactly like missing data. The member's log shows the app's name, or "you"
    for the member's own personal tokens.
    """
    if scope not in principal.scopes:
        return ReadDecision(allowed=False, scope=scope)
    await accesslog.record(
        member_id=principal.member_id,
        scope=scope,
        resource=resource,
        app_name=OWNER_LABEL if principal.is_owner else (principal.app_name or "app"),
        grant_id=principal.grant_id,
        app_id=principal.app_id,
        personal_token_id=principal.personal_token_id,
    )
    return ReadDecision(allowed=True, scope=scope)
