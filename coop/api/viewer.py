"""The `viewer` type: the member behind the bearer token, as this caller may see them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import strawberry
from strawberry import Info
from strawberry.types.nodes import SelectedField, Selection

from coop.api import ids
from coop.api.context import ApiContext
from coop.api.errors import bad_input, not_found
from coop.api.limits import MAX_PAGE
from coop.api.member_types import (
    AccessLogConnection,
    AccessLogEdge,
    AccessLogEntry,
    Connection,
    Grant,
    MemberScorer,
)
from coop.api.permissions import needs_scope
from coop.api.types import (
    Node,
    PageInfo,
    Score,
    ScoreHistoryConnection,
    ScoreHistoryEdge,
    ScoreHistoryEntry,
)
from coop.consent.scopes import MEMBER_MANAGE, PROFILE

Ctx = Info[ApiContext, None]


def check_page(first: int) -> None:
    if not 1 <= first <= MAX_PAGE:
        raise bad_input(f"`first` must be between 1 and {MAX_PAGE}.")


def page_info(has_next: bool, cursors: list[str]) -> PageInfo:
    return PageInfo(has_next_page=has_next, end_cursor=cursors[-1] if cursors else None)


@strawberry.type(description="The member behind the bearer token.")
class Viewer(Node):
    @strawberry.field(
        description="Your handle (scope `profile`).",
        extensions=needs_scope(PROFILE),
    )
    async def handle(self, info: Ctx) -> str | None:
        return await info.context.backend.handle(info.context.principal)

    @strawberry.field(
        description=(
            "Current scores of the scorers this token may read (`score:<name>`) that the "
            "member enabled and that have a value. Every read is logged for the member."
        )
    )
    async def scores(self, info: Ctx) -> list[Score]:
        return await read_scores(info.context)

    @strawberry.field(
        description=(
            "One current score (scope `score:<scorer>`). Not granted, not enabled and no "
            "score yet all answer the same: null with `NOT_FOUND`."
        )
    )
    async def score(
        self,
        info: Ctx,
        scorer: Annotated[str, strawberry.argument(description="The scorer's name, e.g. `reach`.")],
    ) -> Score | None:
        return await read_score(info.context, scorer)

    @strawberry.field(
        description=(
            "A score's past values, newest first (scope `score:<scorer>:history`). "
            "Refusals look like `score`'s: null with `NOT_FOUND`."
        )
    )
    async def score_history(
        self,
        info: Ctx,
        scorer: Annotated[str, strawberry.argument(description="The scorer's name.")],
        first: Annotated[int, strawberry.argument(description="Page size, 1 to 100.")],
        after: Annotated[
            str | None, strawberry.argument(description="The `endCursor` of the previous page.")
        ] = None,
    ) -> ScoreHistoryConnection | None:
        wanted = _selects(info.selected_fields, "contributions")
        return await read_history(info.context, scorer, first, after, contributions=wanted)

    @strawberry.field(
        description="Your connected data sources and their health (scope `member:manage`).",
        extensions=needs_scope(MEMBER_MANAGE),
    )
    async def connections(self, info: Ctx) -> list[Connection] | None:
        return await read_connections(info.context)

    @strawberry.field(
        description="Every installed scorer and whether you enabled it (scope `member:manage`).",
        extensions=needs_scope(MEMBER_MANAGE),
    )
    async def scorer_settings(self, info: Ctx) -> list[MemberScorer] | None:
        return await read_scorer_settings(info.context)

    @strawberry.field(
        description="The grants you gave apps (scope `member:manage`).",
        extensions=needs_scope(MEMBER_MANAGE),
    )
    async def grants(self, info: Ctx) -> list[Grant] | None:
        return await read_grants(info.context)

    @strawberry.field(
        description="Whether all sharing is paused (scope `member:manage`).",
        extensions=needs_scope(MEMBER_MANAGE),
    )
    async def sharing_paused(self, info: Ctx) -> bool | None:
        return await read_sharing_paused(info.context)

    @strawberry.field(
        description="Who read your data, newest first (scope `member:manage`).",
        extensions=needs_scope(MEMBER_MANAGE),
    )
    async def access_log(
        self,
        info: Ctx,
        first: Annotated[int, strawberry.argument(description="Page size, 1 to 100.")],
        after: Annotated[
            str | None, strawberry.argument(description="The `endCursor` of the previous page.")
        ] = None,
    ) -> AccessLogConnection | None:
        return await read_access_log(info.context, first=first, after=after)


async def read_score(ctx: ApiContext, scorer: str) -> Score:
    """`viewer.score(scorer:)`: the score, or NOT_FOUND whatever the reason (plausible
    refusal). Shared by the resolver and the compiled plans (coop.api.plans)."""
    view = await ctx.score(scorer)
    if view is None:
        raise not_found()
    return Score.of(view, ctx.principal.subject)


async def read_scores(ctx: ApiContext) -> list[Score]:
    """`viewer.scores`: every score this token may read, by scorer name (each read logged).
    Shared by the resolver and the compiled plans (coop.api.plans)."""
    found = await ctx.backend.scores(ctx.principal, None)
    for name, view in found.items():
        ctx.known_score(name, view)
    subject = ctx.principal.subject
    return [Score.of(found[name], subject) for name in sorted(found)]


async def read_history(
    ctx: ApiContext, scorer: str, first: int, after: str | None = None, *, contributions: bool
) -> ScoreHistoryConnection:
    """`viewer.scoreHistory`: a page, or NOT_FOUND whatever the reason; the entries'
    explanations opened only when the document asks for their `contributions`. Shared by
    the resolver and the compiled plans (coop.api.plans)."""
    check_page(first)
    page = await ctx.backend.score_history(
        ctx.principal, scorer, first, after, contributions=contributions
    )
    if page is None:
        raise not_found()
    edges = [ScoreHistoryEdge(cursor=e.id, node=ScoreHistoryEntry.of(e)) for e in page.items]
    return ScoreHistoryConnection(
        edges=edges, page_info=page_info(page.has_next, [e.cursor for e in edges])
    )


def _selects(selections: Sequence[Selection], name: str) -> bool:
    """Whether a field called `name` is selected anywhere below (fragments included)."""
    return any(
        (isinstance(s, SelectedField) and s.name == name) or _selects(s.selections, name)
        for s in selections
    )


# The self-service reads (scope `member:manage`, checked by the fields' permission before
# these run). Shared by the resolvers and the compiled plans (coop.api.plans).


async def read_grants(ctx: ApiContext) -> list[Grant]:
    return [Grant.of(v) for v in await ctx.backend.grants(ctx.principal)]


async def read_sharing_paused(ctx: ApiContext) -> bool:
    return await ctx.backend.sharing_paused(ctx.principal)


async def read_connections(ctx: ApiContext) -> list[Connection]:
    return [Connection.of(v) for v in await ctx.backend.connections(ctx.principal)]


async def read_scorer_settings(ctx: ApiContext) -> list[MemberScorer]:
    return [MemberScorer.of(v) for v in await ctx.backend.member_scorers(ctx.principal)]


async def read_access_log(
    ctx: ApiContext, *, first: int, after: str | None = None
) -> AccessLogConnection:
    """`viewer.accessLog` (the plans pass its arguments by their Python names)."""
    check_page(first)
    page = await ctx.backend.access_log(ctx.principal, first, after)
    edges = [AccessLogEdge(cursor=e.id, node=AccessLogEntry.of(e)) for e in page.items]
    return AccessLogConnection(
        edges=edges, page_info=page_info(page.has_next, [e.cursor for e in edges])
    )


def viewer_for(ctx: ApiContext) -> Viewer:
    return Viewer(id=strawberry.ID(ids.encode("Viewer", ctx.principal.subject)))
