"""The consent service: who is calling (`resolve_bearer`, coop.consent.bearer) and the ONE
check every read of member data by a token goes through (`authorize_read`), which also
writes the access log.

Nothing here is cached: each request reads the grant's live state, so a revocation, a pause
or an account deletion refuses the very next request.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import accesslog
from .accesslog import LogPage, last_access, list_entries, list_log_apps
from .accesslog import purge_older_than as purge_access_log
from .bearer import CurrentScore, Principal, resolve_bearer
from .grants import (
    agree_to_terms,
    create_grant,
    expire_due_grants,
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
from .personal import (
    create_personal_token,
    list_personal_tokens,
    revoke_personal_token,
)
from .tokens import purge_stale as purge_stale_tokens

# The consent domain's public API (the grant, token and log functions are re-exported).
__all__ = [
    "CurrentScore",
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

OWNER_LABEL = "you"


@dataclass(frozen=True)
class ReadDecision:
    """The answer of `authorize_read`. A refusal never says why: "not granted", "paused" and
    "no such data" must look the same to the caller (plausible refusal)."""

    allowed: bool
    scope: str

    def __bool__(self) -> bool:
        return self.allowed


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
        app_name=OWNER_LABEL if principal.is_personal else (principal.app_name or "app"),
        grant_id=principal.grant_id,
        app_id=principal.app_id,
        personal_token_id=principal.token_id,
    )
    return ReadDecision(allowed=True, scope=scope)
