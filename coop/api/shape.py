"""A document's size with its fragments expanded, computed in time linear in the document.

Depth, alias count and node estimate all "expand" fragment spreads: a fragment spread twice
counts twice. Expanding them by walking (as strawberry's QueryDepthLimiter and
MaxAliasesLimiter, and coop's first node estimate, did) costs as much as the expanded
document, which 20 fragments each spreading the next one twice make 2^20 times the text.
Here every fragment is summarised once, in dependency order, and a spread adds the summary:
each selection of the document is visited once per summary kind, whatever it expands to.

Cycles (`fragment A { ...B } fragment B { ...A }`) are reported by graphql-core's
NoFragmentCyclesRule; here a spread that closes a cycle counts as empty, so the walk ends.
Recursion is bounded by one fragment's or operation's own nesting, which graphql-core's parser
already bounds; spreads are looked up, never followed.

`Shape.work` counts the selections visited: tests hold it proportional to the document.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    SelectionSetNode,
)

T = TypeVar("T")


def _spreads(selection_set: SelectionSetNode | None) -> Iterator[str]:
    """Names of the fragments spread anywhere inside `selection_set` (no recursion)."""
    stack = [selection_set] if selection_set is not None else []
    while stack:
        for selection in stack.pop().selections:
            if isinstance(selection, FragmentSpreadNode):
                yield selection.name.value
            elif isinstance(selection, FieldNode | InlineFragmentNode) and selection.selection_set:
                stack.append(selection.selection_set)


def fragment_order(fragments: Mapping[str, FragmentDefinitionNode]) -> list[str]:
    """Fragment names, each after every fragment it spreads (cycles cut; unknown names left
    out): an iterative depth-first post-order, linear in the document."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    for root in fragments:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, _spreads(fragments[root].selection_set))]
        while stack:
            name, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                state[name] = 2
                order.append(name)
            elif child in fragments and child not in state:
                state[child] = 1
                stack.append((child, _spreads(fragments[child].selection_set)))
    return order


class Summary(Generic[T]):
    """One kind of per-selection-set value, with every fragment summarised once: `field`
    gives a field's value from its own selection set's value (None for a leaf), `combine`
    adds siblings, `empty` is the value of nothing."""

    def __init__(
        self,
        fragments: Mapping[str, FragmentDefinitionNode],
        *,
        field: Callable[[FieldNode, T | None], T],
        combine: Callable[[T, T], T],
        empty: T,
        order: list[str] | None = None,
    ) -> None:
        self.field = field
        self.combine = combine
        self.empty = empty
        self.work = 0
        self.done: dict[str, T] = {}
        for name in order if order is not None else fragment_order(fragments):
            self.done[name] = self.of(fragments[name].selection_set)

    def of(self, selection_set: SelectionSetNode | None) -> T:
        """The value of a selection set, its fragments' summaries added where spread."""
        value = self.empty
        if selection_set is None:
            return value
        for selection in selection_set.selections:
            self.work += 1
            if isinstance(selection, FieldNode):
                inner = self.of(selection.selection_set) if selection.selection_set else None
                part = self.field(selection, inner)
            elif isinstance(selection, InlineFragmentNode):
                part = self.of(selection.selection_set)
            else:  # a spread: summarised already, or unknown / closing a cycle (empty)
                assert isinstance(selection, FragmentSpreadNode)
                part = self.done.get(selection.name.value, self.empty)
            value = self.combine(value, part)
        return value


def fragments_of(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def _depth(field: FieldNode, inner: int | None) -> int:
    # strawberry's rule: `__`-prefixed (introspection) fields are not descended into.
    if inner is None or field.name.value.startswith("__"):
        return 0
    return 1 + inner


def _aliases(field: FieldNode, inner: int | None) -> int:
    return (1 if field.alias else 0) + (inner or 0)


def depth_summary(
    fragments: Mapping[str, FragmentDefinitionNode], order: list[str] | None = None
) -> Summary[int]:
    """Deepest field level below a selection set (its own fields are level 0)."""
    return Summary(fragments, field=_depth, combine=max, empty=0, order=order)


def alias_summary(
    fragments: Mapping[str, FragmentDefinitionNode], order: list[str] | None = None
) -> Summary[int]:
    """Aliased fields in a selection set, fragments counted each time they are spread."""
    return Summary(fragments, field=_aliases, combine=int.__add__, empty=0, order=order)


__all__ = [
    "Summary",
    "alias_summary",
    "depth_summary",
    "fragment_order",
    "fragments_of",
]
