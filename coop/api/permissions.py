"""Coarse scope gates for fields (GQ-02: the field is null, `FORBIDDEN` with `required_scope`).

Permission instances are shared by every request, so they hold only the scope they check.
"""

from __future__ import annotations

from typing import Any

from strawberry import Info
from strawberry.extensions.field_extension import FieldExtension
from strawberry.permission import BasePermission, PermissionExtension

from coop.api.context import ApiContext
from coop.api.errors import Code


class RequireScope(BasePermission):
    """Allows the field only when the token carries `scope`."""

    def __init__(self, scope: str) -> None:
        self.scope = scope
        self.message = f"This field needs the `{scope}` scope."
        self.error_extensions = {"code": Code.FORBIDDEN.value, "required_scope": scope}

    def has_permission(self, source: Any, info: Info[ApiContext, None], **kwargs: Any) -> bool:
        return self.allows(info.context)

    def allows(self, context: ApiContext) -> bool:
        """The decision (compiled plans call it too, then `on_unauthorized` to refuse)."""
        return context.has_scope(self.scope)


def needs_scope(scope: str) -> list[FieldExtension]:
    """Field extensions for `@strawberry.field(extensions=needs_scope("profile"))`."""
    return [PermissionExtension(permissions=[RequireScope(scope)], use_directives=False)]
