"""The schema: Query, Mutation and their types (run by `coop.api.operation`)."""

from __future__ import annotations

import uuid
from typing import Annotated

import strawberry
from strawberry import Info

from coop.api import ids
from coop.api.context import ApiContext
from coop.api.errors import not_found
from coop.api.governance_types import Proposal, ProposalState
from coop.api.member_types import Connection, Grant
from coop.api.mutations import Mutation
from coop.api.permissions import needs_scope
from coop.api.types import Node, Score, Scorer
from coop.api.viewer import Viewer, viewer_for
from coop.consent.scopes import MEMBER_MANAGE

Ctx = Info[ApiContext, None]


async def _resolve_node(ctx: ApiContext, type_name: str, key: str) -> Node | None:
    principal = ctx.principal
    if type_name == "Viewer":
        return viewer_for(ctx) if key == principal.subject else None
    if type_name == "Score":
        subject, _, scorer = key.rpartition("/")
        if subject != principal.subject:
            return None
        view = await ctx.score(scorer)
        return Score.of(view, subject) if view else None
    if not ctx.has_scope(MEMBER_MANAGE):
        return None  # the same answer as for an id that does not exist
    try:
        object_id = uuid.UUID(key)
    except ValueError:
        return None
    if type_name == "Connection":
        for connection in await ctx.backend.connections(principal):
            if connection.id == object_id:
                return Connection.of(connection)
    if type_name == "Grant":
        for grant in await ctx.backend.grants(principal):
            if grant.id == object_id:
                return Grant.of(grant)
    return None


@strawberry.type(description="Reads. Every field needs a valid bearer token.")
class Query:
    @strawberry.field(description="The member behind the bearer token.")
    def viewer(self, info: Ctx) -> Viewer:
        return viewer_for(info.context)

    @strawberry.field(
        description=(
            "Any object by its global id. Another member's object, an object this token may "
            "not see and an id that never existed all answer null with `NOT_FOUND`."
        )
    )
    async def node(
        self,
        info: Ctx,
        id: Annotated[strawberry.ID, strawberry.argument(description="A global id.")],
    ) -> Node | None:
        decoded = ids.decode(id)
        found = await _resolve_node(info.context, *decoded) if decoded else None
        if found is None:
            raise not_found()
        return found

    @strawberry.field(
        description=(
            "The cooperative's proposals on scorers, open ones first, each with the tally, the "
            "rules and your own vote (scope `member:manage`)."
        ),
        extensions=needs_scope(MEMBER_MANAGE),
    )
    async def proposals(
        self,
        info: Ctx,
        state: Annotated[
            ProposalState | None, strawberry.argument(description="Only open or closed ones.")
        ] = None,
    ) -> list[Proposal] | None:
        ctx = info.context
        found = await ctx.backend.proposals(ctx.principal, state.value if state else None)
        return [Proposal.of(entry) for entry in found]

    @strawberry.field(description="The public catalogue of installed scorers.")
    async def scorers(self, info: Ctx) -> list[Scorer]:
        return [Scorer.of(s) for s in await info.context.backend.catalogue()]


# Limits, caches, field suggestions and error shaping belong to the pipeline that runs the
# schema (coop.api.operation), not to schema extensions.
schema = strawberry.Schema(query=Query, mutation=Mutation, types=[Viewer, Score, Connection, Grant])
