"""The API side of disclosure levels: every `Score` field that tells something about the
value carries `disclosed(...)`, which asks consent's one gate (`consent.disclosure.gate`)
before the field resolves. Compiled plans (coop.api.plans) call `check_disclosure` too."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from strawberry import Info
from strawberry.extensions.field_extension import FieldExtension

from coop.api.context import ApiContext
from coop.api.errors import forbidden
from coop.consent.bearer import CurrentScore
from coop.consent.disclosure import Reveals, gate


class OfScore(Protocol):
    """What a gated field's parent is: an object standing for one current score."""

    @property
    def view(self) -> CurrentScore: ...


def check_disclosure(ctx: ApiContext, source: OfScore, reveals: Reveals) -> bool:
    """True: the field may resolve. False: it is null (nothing refused: e.g. a threshold
    field at a level without a threshold). A refusal raises FORBIDDEN with the scope that
    would allow it, exactly like an ungranted field."""
    verdict = gate(ctx.principal.scopes, source.view.scorer, reveals)
    if verdict.allowed:
        return True
    if verdict.required_scope is not None:
        raise forbidden(verdict.required_scope)
    return False


class Disclosed(FieldExtension):
    """Resolve the field only when the grant's level shows what it `reveals`. Instances hold
    only that (they are shared by every request)."""

    def __init__(self, reveals: Reveals) -> None:
        super().__init__()
        self.reveals = reveals

    def resolve(
        self, next_: Callable[..., Any], source: Any, info: Info[ApiContext, None], **kwargs: Any
    ) -> Any:
        if not check_disclosure(info.context, source, self.reveals):
            return None
        return next_(source, info, **kwargs)

    async def resolve_async(
        self,
        next_: Callable[..., Awaitable[Any]],
        source: Any,
        info: Info[ApiContext, None],
        **kwargs: Any,
    ) -> Any:
        if not check_disclosure(info.context, source, self.reveals):
            return None
        return await next_(source, info, **kwargs)


def disclosed(reveals: Reveals) -> list[FieldExtension]:
    """Field extensions for `@strawberry.field(extensions=disclosed(Reveals.VALUE))`."""
    return [Disclosed(reveals)]
