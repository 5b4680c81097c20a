"""A work budget for validating one new document: its CPU is bounded by its size.

graphql-core's OverlappingFieldsCanBeMergedRule compares same-named fields pairwise, with
their sub-selections and fragments (quadratic, worse when nested): within 2,000 tokens a
document of 10 fields each spreading 25 fragments took 0.8 s. Rather than trust a model of
that rule, the validation of a new document runs under a budget of Python function calls
(counted by a profile hook on the validating thread only) proportional to the document's
AST size; past it, validation stops with one error. The count is deterministic, so the bound
is the same on every machine; legitimate documents use a small fraction of it (tests).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from types import FrameType
from typing import Any

from graphql import DocumentNode, GraphQLError, GraphQLSchema, Node, validate
from graphql.validation import ASTValidationRule

WORK_PER_NODE = 200
WORK_BASE = 25_000
TOO_COSTLY = "This document is too costly to check: send fewer repeated fields and fragments."


class _OverBudget(Exception):
    pass


def ast_size(document: DocumentNode) -> int:
    """The number of AST nodes (iterative: no recursion on deep documents)."""
    count, stack = 0, list[Node]([document])
    while stack:
        node = stack.pop()
        count += 1
        for key in node.keys:
            if key == "loc":
                continue
            value = getattr(node, key, None)
            if isinstance(value, Node):
                stack.append(value)
            elif isinstance(value, tuple | list):
                stack.extend(v for v in value if isinstance(v, Node))
    return count


def validate_within_budget(
    schema: GraphQLSchema,
    document: DocumentNode,
    rules: Sequence[type[ASTValidationRule]],
    *,
    hide_suggestions: bool,
) -> list[GraphQLError]:
    """graphql-core's `validate`, stopped with TOO_COSTLY past WORK_BASE + WORK_PER_NODE per
    AST node function calls. Any profile hook already set (a test's counter) keeps running."""
    left = WORK_BASE + WORK_PER_NODE * ast_size(document)
    outer = sys.getprofile()

    def count(frame: FrameType, event: Any, arg: Any) -> None:
        nonlocal left
        if outer is not None:
            outer(frame, event, arg)
        if event == "call":
            left -= 1
            if left < 0:
                raise _OverBudget()

    sys.setprofile(count)
    try:
        return validate(schema, document, rules, hide_suggestions=hide_suggestions)
    except _OverBudget:
        return [GraphQLError(TOO_COSTLY)]
    finally:
        sys.setprofile(outer)


__all__ = ["TOO_COSTLY", "WORK_BASE", "WORK_PER_NODE", "ast_size", "validate_within_budget"]
