"""Amount limits checked before execution: `first` bounds and a node ceiling (GQ-10).

The estimate follows GitHub's "node limit": every list or connection field contributes the
product of its own size bound and those of the lists it sits in. A connection's bound is its
`first` argument; a plain list's bound is the cap its resolver enforces (LIST_BOUNDS).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
)
from graphql.language import IntValueNode

MAX_DEPTH = 10
MAX_ALIASES = 15
MAX_TOKENS = 2000
MAX_PAGE = 100
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


@dataclass
class _Walk:
    fragments: Mapping[str, FragmentDefinitionNode]
    variables: Mapping[str, Any]
    total: int = 0


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


def _walk(
    selection_set: SelectionSetNode | None, multiplier: int, walk: _Walk, seen: frozenset[str]
) -> None:
    if selection_set is None:
        return
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            size = _page_size(selection, walk.variables)
            if size is None:
                size = LIST_BOUNDS.get(selection.name.value)
            inner = multiplier
            if size is not None:
                inner = multiplier * size
                walk.total += inner
                if walk.total > MAX_NODES:
                    raise LimitExceeded(
                        f"This query could return more than {MAX_NODES} nodes. "
                        "Ask for smaller pages or fewer nested lists.",
                        "MAX_NODE_LIMIT_EXCEEDED",
                    )
            _walk(selection.selection_set, inner, walk, seen)
        elif isinstance(selection, InlineFragmentNode):
            _walk(selection.selection_set, multiplier, walk, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = walk.fragments.get(name)
            if fragment is not None and name not in seen:
                _walk(fragment.selection_set, multiplier, walk, seen | {name})


def check_amounts(
    document: DocumentNode, operation_name: str | None, variables: Mapping[str, Any] | None
) -> int:
    """Return the node estimate of the operation to run; raise LimitExceeded when too big."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    walk = _Walk(fragments=fragments, variables=variables or {})
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        name = definition.name.value if definition.name else None
        if operation_name is not None and name != operation_name:
            continue
        _walk(definition.selection_set, 1, walk, frozenset())
    return walk.total
