"""Member self-service mutations (scope `member:manage`): each returns success | typed error."""

from __future__ import annotations

import uuid
from typing import Annotated

import strawberry
from strawberry import Info

from coop.api import ids
from coop.api.context import ApiContext
from coop.api.governance_types import (
    CastVoteResult,
    CastVoteSuccess,
    Proposal,
    VoteChoice,
    VoteError,
    VoteErrorCode,
)
from coop.api.member_types import (
    AccountError,
    AccountErrorCode,
    ChangeGrantResult,
    ChangeGrantSuccess,
    Connection,
    ConnectionError,
    ConnectionErrorCode,
    DeleteAccountResult,
    DeleteAccountSuccess,
    Grant,
    GrantError,
    GrantErrorCode,
    MemberScorer,
    RequestExportResult,
    RequestExportSuccess,
    ScorerError,
    ScorerErrorCode,
    SetScorerResult,
    SetScorerSuccess,
    SetSharingResult,
    SetSharingSuccess,
    SyncConnectionResult,
    SyncConnectionSuccess,
)
from coop.api.permissions import needs_scope
from coop.consent.scopes import MEMBER_MANAGE
from coop.errors import (
    ConflictError,
    CoopError,
    GovernanceOffError,
    NotEligibleError,
    NotFoundError,
    VotingClosedError,
)
from coop.types import utcnow

DELETE_CONFIRMATION = "delete my account"
Ctx = Info[ApiContext, None]


def _uuid_of(global_id: str, type_name: str) -> uuid.UUID | None:
    decoded = ids.decode(global_id)
    if decoded is None or decoded[0] != type_name:
        return None
    try:
        return uuid.UUID(decoded[1])
    except ValueError:
        return None


async def _set_scorer(info: Ctx, name: str, action: str) -> SetScorerResult:
    """Enable, disable, accept the installed version of, or keep the current score of
    (decline the installed version of) a scorer."""
    ctx = info.context
    try:
        if action == "accept":
            await ctx.backend.accept_scorer_version(ctx.principal, name)
        elif action == "keep":
            await ctx.backend.keep_scorer_version(ctx.principal, name)
        else:
            await ctx.backend.set_scorer(ctx.principal, name, action == "enable")
        views = await ctx.backend.member_scorers(ctx.principal)
    except NotFoundError:
        return ScorerError(code=ScorerErrorCode.NOT_FOUND, message="No such scorer.")
    except CoopError as exc:
        if exc.status >= 500:
            raise
        return ScorerError(code=ScorerErrorCode.INVALID, message=exc.message)
    view = next((v for v in views if v.info.name == name), None)
    if view is None:
        return ScorerError(code=ScorerErrorCode.NOT_FOUND, message="No such scorer.")
    return SetScorerSuccess(scorer=MemberScorer.of(view))


async def _change_grant(info: Ctx, id: str, action: str) -> ChangeGrantResult:
    ctx = info.context
    grant_id = _uuid_of(id, "Grant")
    if grant_id is None:
        return GrantError(code=GrantErrorCode.NOT_FOUND, message="No such grant.")
    try:
        view = await ctx.backend.change_grant(ctx.principal, grant_id, action)
    except NotFoundError:
        return GrantError(code=GrantErrorCode.NOT_FOUND, message="No such grant.")
    except CoopError as exc:
        if exc.status >= 500:
            raise
        return GrantError(code=GrantErrorCode.INVALID_STATE, message=exc.message)
    return ChangeGrantSuccess(grant=Grant.of(view))


_VOTE_ERRORS: tuple[tuple[type[CoopError], VoteErrorCode], ...] = (
    (NotFoundError, VoteErrorCode.NOT_FOUND),
    (VotingClosedError, VoteErrorCode.VOTING_CLOSED),
    (NotEligibleError, VoteErrorCode.NOT_ELIGIBLE),
    (GovernanceOffError, VoteErrorCode.GOVERNANCE_OFF),
)


async def _cast_vote(info: Ctx, proposal_id: str, choice: VoteChoice) -> CastVoteResult:
    ctx = info.context
    found = _uuid_of(proposal_id, "Proposal")
    if found is None:
        return VoteError(code=VoteErrorCode.NOT_FOUND, message="There is no such proposal.")
    try:
        entry = await ctx.backend.cast_vote(ctx.principal, found, choice.value)
    except CoopError as exc:
        for error, code in _VOTE_ERRORS:
            if isinstance(exc, error):
                return VoteError(code=code, message=exc.message)
        raise
    return CastVoteSuccess(proposal=Proposal.of(entry))


@strawberry.type(description="Changes a member makes to their own account.")
class Mutation:
    @strawberry.mutation(
        description="Sync one of your connections now.", extensions=needs_scope(MEMBER_MANAGE)
    )
    async def sync_connection(
        self,
        info: Ctx,
        id: Annotated[strawberry.ID, strawberry.argument(description="Connection id.")],
    ) -> SyncConnectionResult | None:
        ctx = info.context
        connection_id = _uuid_of(id, "Connection")
        if connection_id is None:
            return ConnectionError(
                code=ConnectionErrorCode.NOT_FOUND, message="No such connection."
            )
        try:
            view = await ctx.backend.sync_connection(ctx.principal, connection_id)
        except NotFoundError:
            return ConnectionError(
                code=ConnectionErrorCode.NOT_FOUND, message="No such connection."
            )
        except ConflictError as exc:
            return ConnectionError(code=ConnectionErrorCode.UNAVAILABLE, message=exc.message)
        return SyncConnectionSuccess(connection=Connection.of(view))

    @strawberry.mutation(
        description=(
            "Let a scorer run on your data. It answers at once; the first score is computed "
            "in the background."
        ),
        extensions=needs_scope(MEMBER_MANAGE),
    )
    async def enable_scorer(
        self, info: Ctx, name: Annotated[str, strawberry.argument(description="The scorer's name.")]
    ) -> SetScorerResult | None:
        return await _set_scorer(info, name, "enable")

    @strawberry.mutation(
        description="Stop a scorer and delete its scores.", extensions=needs_scope(MEMBER_MANAGE)
    )
    async def disable_scorer(
        self, info: Ctx, name: Annotated[str, strawberry.argument(description="The scorer's name.")]
    ) -> SetScorerResult | None:
        return await _set_scorer(info, name, "disable")

    @strawberry.mutation(
        description=(
            "Accept the installed version of an enabled scorer: a new version waiting as a "
            "preview, or one that reads more than the version you accepted (see "
            "`MemberScorer.awaitingConsent`). It becomes your scorer and your score is "
            "recomputed in the background."
        ),
        extensions=needs_scope(MEMBER_MANAGE),
    )
    async def accept_scorer_version(
        self, info: Ctx, name: Annotated[str, strawberry.argument(description="The scorer's name.")]
    ) -> SetScorerResult | None:
        return await _set_scorer(info, name, "accept")

    @strawberry.mutation(
        description=(
            'Keep your current score of an enabled scorer ("Keep current score"): the '
            "installed version waiting for you does not run on your data, and your last "
            "score stays, frozen and `stale` for apps, until you accept the new version "
            "with `acceptScorerVersion` or disable the scorer. `INVALID` when no new version "
            "waits."
        ),
        extensions=needs_scope(MEMBER_MANAGE),
    )
    async def keep_scorer_version(
        self, info: Ctx, name: Annotated[str, strawberry.argument(description="The scorer's name.")]
    ) -> SetScorerResult | None:
        return await _set_scorer(info, name, "keep")

    @strawberry.mutation(
        description=(
            "Vote on a proposal of the cooperative (docs/governance.md). A second vote "
            "replaces the first until the vote closes; who voted how is shown to nobody."
        ),
        extensions=needs_scope(MEMBER_MANAGE),
    )
    async def cast_vote(
        self,
        info: Ctx,
        proposal_id: Annotated[
            strawberry.ID, strawberry.argument(description="The proposal's global id.")
        ],
        choice: Annotated[VoteChoice, strawberry.argument(description="Yes, no or abstain.")],
    ) -> CastVoteResult | None:
        return await _cast_vote(info, proposal_id, choice)

    @strawberry.mutation(
        description="Revoke a grant: the app is refused from its next request.",
        extensions=needs_scope(MEMBER_MANAGE),
    )
    async def revoke_grant(
        self, info: Ctx, id: Annotated[strawberry.ID, strawberry.argument(description="Grant id.")]
    ) -> ChangeGrantResult | None:
        return await _change_grant(info, id, "revoke")

    @strawberry.mutation(
        description=(
            "Pause one grant: the app is refused from its next request, nothing is revoked, "
            "and it stays paused (even when all sharing resumes) until `resumeGrant`."
        ),
        extensions=needs_scope(MEMBER_MANAGE),
    )
    async def pause_grant(
        self, info: Ctx, id: Annotated[strawberry.ID, strawberry.argument(description="Grant id.")]
    ) -> ChangeGrantResult | None:
        return await _change_grant(info, id, "pause")

    @strawberry.mutation(
        description=(
            "Resume a grant you paused. While all sharing is paused it stays paused and "
            "resumes with sharing."
        ),
        extensions=needs_scope(MEMBER_MANAGE),
    )
    async def resume_grant(
        self, info: Ctx, id: Annotated[strawberry.ID, strawberry.argument(description="Grant id.")]
    ) -> ChangeGrantResult | None:
        return await _change_grant(info, id, "resume")

    @strawberry.mutation(
        description="Pause (or resume) all sharing with every app at once.",
        extensions=needs_scope(MEMBER_MANAGE),
    )
    async def set_sharing_paused(
        self,
        info: Ctx,
        paused: Annotated[bool, strawberry.argument(description="True to pause, false to resume.")],
    ) -> SetSharingResult | None:
        ctx = info.context
        try:
            await ctx.backend.set_sharing_paused(ctx.principal, paused)
        except CoopError as exc:
            if exc.status >= 500:
                raise
            return GrantError(code=GrantErrorCode.INVALID_STATE, message=exc.message)
        return SetSharingSuccess(paused=paused)

    @strawberry.mutation(
        description="Prepare an export of everything coop holds about you.",
        extensions=needs_scope(MEMBER_MANAGE),
    )
    async def request_export(self, info: Ctx) -> RequestExportResult | None:
        ctx = info.context
        try:
            view = await ctx.backend.request_export(ctx.principal)
        except CoopError as exc:
            if exc.status >= 500:
                raise
            return AccountError(code=AccountErrorCode.UNAVAILABLE, message=exc.message)
        return RequestExportSuccess(download_path=view.download_path, expires_at=view.expires_at)

    @strawberry.mutation(
        description=(
            "Delete your account and everything in it, now. "
            f'`confirm` must be exactly "{DELETE_CONFIRMATION}".'
        ),
        extensions=needs_scope(MEMBER_MANAGE),
    )
    async def delete_account(
        self,
        info: Ctx,
        confirm: Annotated[
            str, strawberry.argument(description=f'Exactly "{DELETE_CONFIRMATION}".')
        ],
    ) -> DeleteAccountResult | None:
        if confirm != DELETE_CONFIRMATION:
            return AccountError(
                code=AccountErrorCode.CONFIRMATION_MISMATCH,
                message=f'Type "{DELETE_CONFIRMATION}" to confirm.',
            )
        ctx = info.context
        try:
            await ctx.backend.delete_account(ctx.principal)
        except CoopError as exc:
            if exc.status >= 500:
                raise
            return AccountError(code=AccountErrorCode.INVALID, message=exc.message)
        return DeleteAccountSuccess(deleted_at=utcnow())
