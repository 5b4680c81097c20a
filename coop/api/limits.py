"""Limits checked before execution: depth and aliases (GQ-05, GQ-06, as validation rules),
`first` bounds and a node ceiling (GQ-10). All are linear in the document (coop.api.shape).

The estimate follows GitHub's "node limit": every list or connection field contributes the
product of its own size bound and those of the lists it sits in. A connection's bound is its
`first` argument; a plain list's bound is the cap its resolver enforces (LIST_BOUNDS).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    VariableNode,
)
from graphql.language import IntValueNode

from coop.api.shape import Summary, alias_summary, depth_summary, fragments_of

MAX_DEPTH = 10
MAX_ALIASES = 15
MAX_TOKENS = 2000
MAX_PAGE = 100
# Per selection set, as written: fields that share one response name, and fragments (named or
# inline) spread side by side. graphql-core's OverlappingFieldsCanBeMergedRule compares such
# siblings pairwise (quadratic, graphql-core PR #270); these caps keep that term small.
MAX_SAME_NAME = 10
MAX_FRAGMENTS_SIDE_BY_SIDE = 25
# A scaled-down analogue of GitHub's 500,000 (their pages hold 100 and nest freely).
MAX_NODES = 10_000

# Upper bounds of plain (unpaginated) list fields, by field name. They match the caps the
# resolvers and services enforce (coop.scoring.spec MAX_CONTRIBUTIONS / MAX_REASONS, …).
LIST_BOUNDS: Mapping[str, int] = {
    "scores": 50,
    "scorers": 50,
    "reads": 10,
    "contributions": 50,
    "reasons": 20,
    "breakdown": 100,  # MAX_BREAKDOWN
    "causes": 16,  # coop.scoring.causes.MAX_CAUSES
    "connections": 50,
    "grants": 100,
    "scopes": 50,
    "edges": 1,  # the connection's `first` already counted the edges
}


class LimitExceeded(Exception):
    """The document asks for more than the API serves; `code` says which limit."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _page_size(field: FieldNode, variables: Mapping[str, Any]) -> int | None:
    for arg in field.arguments or ():
        if arg.name.value not in ("first", "last"):
            continue
        value: Any
        if isinstance(arg.value, VariableNode):
            value = variables.get(arg.value.name.value)
        elif isinstance(arg.value, IntValueNode):
            value = int(arg.value.value)
        else:
            value = None
        if not isinstance(value, int) or isinstance(value, bool):
            return None  # the schema's own validation reports the wrong type
        if not 1 <= value <= MAX_PAGE:
            raise LimitExceeded(
                f"`{arg.name.value}` on `{field.name.value}` must be between 1 and {MAX_PAGE}, "
                f"got {value}.",
                "BAD_USER_INPUT",
            )
        return value
    return None


def node_summary(
    fragments: Mapping[str, FragmentDefinitionNode], variables: Mapping[str, Any]
) -> Summary[int]:
    """Nodes a selection set may return: a list field counts its bound times (1 + what each
    element holds); fragments are summarised once (coop.api.shape), so this is linear."""

    def field(node: FieldNode, inner: int | None) -> int:
        size = _page_size(node, variables)
        if size is None:
            size = LIST_BOUNDS.get(node.name.value)
        return (inner or 0) if size is None else size * (1 + (inner or 0))

    return Summary(fragments, field=field, combine=int.__add__, empty=0)


def check_amounts(
    document: DocumentNode, operation_name: str | None, variables: Mapping[str, Any] | None
) -> int:
    """Return the node estimate of the operation to run; raise LimitExceeded when too big."""
    nodes = node_summary(fragments_of(document), variables or {})
    total = 0
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        name = definition.name.value if definition.name else None
        if operation_name is not None and name != operation_name:
            continue
        total += nodes.of(definition.selection_set)
    if total > MAX_NODES:
        raise LimitExceeded(
            f"This query could return more than {MAX_NODES} nodes. "
            "Ask for smaller pages or fewer nested lists.",
            "MAX_NODE_LIMIT_EXCEEDED",
        )
    return total


class SelectionBreadth(ValidationRule):
    """Caps on siblings in one selection set (MAX_SAME_NAME, MAX_FRAGMENTS_SIDE_BY_SIDE), so
    that the pairwise comparisons of OverlappingFieldsCanBeMergedRule stay bounded."""

    def enter_selection_set(self, node: SelectionSetNode, *_args: Any) -> None:
        names: dict[str, int] = {}
        fragments = 0
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                name = (selection.alias or selection.name).value
                names[name] = names.get(name, 0) + 1
                if names[name] == MAX_SAME_NAME + 1:
                    self.report_error(
                        GraphQLError(
                            f"More than {MAX_SAME_NAME} fields named '{name}' side by side.",
                            selection,
                        )
                    )
            else:
                fragments += 1
                if fragments == MAX_FRAGMENTS_SIDE_BY_SIDE + 1:
                    self.report_error(
                        GraphQLError(
                            f"More than {MAX_FRAGMENTS_SIDE_BY_SIDE} fragments side by side.",
                            selection,
                        )
                    )


class DepthLimit(ValidationRule):
    """strawberry's QueryDepthLimiter(max_depth=MAX_DEPTH), same message and same counting
    (fragments expanded, `__` fields not descended into), but linear (coop.api.shape)."""

    def __init__(self, context: ValidationContext) -> None:
        super().__init__(context)
        document = context.document
        depth = depth_summary(fragments_of(document))
        for definition in document.definitions:
            if not isinstance(definition, OperationDefinitionNode):
                continue
            if depth.of(definition.selection_set) > MAX_DEPTH:
                name = definition.name.value if definition.name else "anonymous"
                context.report_error(
                    GraphQLError(
                        f"'{name}' exceeds maximum operation depth of {MAX_DEPTH}", definition
                    )
                )


class AliasLimit(ValidationRule):
    """strawberry's MaxAliasesLimiter(max_alias_count=MAX_ALIASES), same message and count
    (aliases in fragments counted each time they are spread), but linear (coop.api.shape)."""

    def __init__(self, context: ValidationContext) -> None:
        super().__init__(context)
        document = context.document
        aliases = alias_summary(fragments_of(document))
        total = sum(
            aliases.of(d.selection_set)
            for d in document.definitions
            if isinstance(d, OperationDefinitionNode)
        )
        if total > MAX_ALIASES:
            context.report_error(GraphQLError(f"{total} aliases found. Allowed: {MAX_ALIASES}"))
