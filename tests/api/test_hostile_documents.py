"""Hostile GraphQL documents (issue 12 part 3): generated families, work counted, not timed.

Each family grows a document step by step. The work of parsing and validating it (Python
function calls, counted with sys.setprofile: deterministic, unlike time) must grow no faster
than the document: work(4n) <= 4 * work(n) * SLACK. Before the fix, 20 fragments each spreading
the next twice cost 2^20 expansions in the depth, alias and node checks.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest
from graphql import get_introspection_query, parse, validate
from strawberry.extensions.max_aliases import create_validator as strawberry_aliases
from strawberry.extensions.query_depth_limiter import create_validator as strawberry_depth

from coop.api import budget, limits, shape
from coop.api.limits import MAX_ALIASES, MAX_DEPTH, AliasLimit, DepthLimit, check_amounts
from coop.api.operation import RULES, Operations
from coop.api.schema import schema

SLACK = 1.5  # constant overheads shrink as documents grow; quadratic growth would be 4x


def calls(run: Callable[[], object]) -> int:
    """Python function calls made by `run` (a deterministic measure of work)."""
    count = 0

    def profile(frame: object, event: str, arg: object) -> None:
        nonlocal count
        if event == "call":
            count += 1

    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(None)
    return count


def chain(n: int) -> str:
    """Fragment i spreads fragment i+1 twice: 2^n expanded copies."""
    body = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(n))
    return f"query Q {{ ...F0 }} {body} fragment F{n} on Query {{ a: __typename }}"


def diamond(n: int) -> str:
    """Each level spreads both fragments of the next level: 2^n paths, nested in fields."""
    levels = [
        f"fragment A{i} on Viewer {{ id ...A{i + 1} ...B{i + 1} }} "
        f"fragment B{i} on Viewer {{ subject ...A{i + 1} ...B{i + 1} }}"
        for i in range(n)
    ]
    last = f"fragment A{n} on Viewer {{ id }} fragment B{n} on Viewer {{ subject }}"
    return f"query Q {{ viewer {{ ...A0 }} }} {' '.join(levels)} {last}"


def alias_bomb(n: int) -> str:
    """Aliases inside fragments spread twice per level."""
    body = " ".join(
        f"fragment F{i} on Query {{ x{i}: __typename ...F{i + 1} ...F{i + 1} }}" for i in range(n)
    )
    return f"{{ ...F0 }} {body} fragment F{n} on Query {{ z: __typename }}"


def depth_chain(n: int) -> str:
    """Fragments nest fields through a chain: deep only when expanded."""
    body = " ".join(
        f"fragment F{i} on Viewer {{ subject ...F{i + 1} ...F{i + 1} }}" for i in range(n)
    )
    return f"query Deep {{ viewer {{ ...F0 }} }} {body} fragment F{n} on Viewer {{ id }}"


def fan_out(n: int) -> str:
    """Many distinct fragments, each spread once, in groups (side by side within the cap)."""
    count = max(n // 20, 1)
    spreads = [" ".join(f"...F{i}" for i in range(g * 20, g * 20 + 20)) for g in range(count)]
    groups = [f"a{g}: viewer {{ {spread} }}" for g, spread in enumerate(spreads)]
    frags = " ".join(f"fragment F{i} on Viewer {{ id }}" for i in range(count * 20))
    return f"{{ {' '.join(groups)} }} {frags}"


def field_list(n: int) -> str:
    return "{ viewer { " + " ".join(["id subject"] * n) + " } }"


def many_operations(n: int) -> str:
    return " ".join(f"query Q{i} {{ viewer {{ id }} }}" for i in range(n))


def directives(n: int) -> str:
    return "{ viewer { id" + " @include(if: true)" * n + " } }"


def nested_lists(n: int) -> str:
    return '{ node(id: "' + "x" * n + '") { id } }'


FAMILIES = {
    "chain": (chain, (4, 8, 16)),
    "diamond": (diamond, (4, 8, 16)),
    "alias_bomb": (alias_bomb, (4, 8, 16)),
    "depth_chain": (depth_chain, (4, 8, 16)),
    "fan_out": (fan_out, (20, 40, 80)),
    "field_list": (field_list, (40, 80, 160)),
    "many_operations": (many_operations, (20, 40, 80)),
    "directives": (directives, (20, 40, 80)),
    "long_string": (nested_lists, (1000, 2000, 4000)),
}


def prepare_work(text: str) -> int:
    operations = Operations(schema)
    return calls(lambda: operations.prepare(text))


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_family_costs_work_linear_in_its_size(family: str) -> None:
    make, sizes = FAMILIES[family]
    texts = [make(n) for n in sizes]
    work = [prepare_work(text) for text in texts]
    for smaller, larger, w_small, w_large in zip(texts, texts[1:], work, work[1:], strict=False):
        growth = len(larger) / len(smaller)
        assert w_large <= w_small * growth * SLACK, (family, work, [len(t) for t in texts])


@pytest.mark.parametrize("n", [4, 10, 20, 40])
@pytest.mark.parametrize("make", [chain, diamond, alias_bomb, depth_chain])
def test_summaries_visit_each_selection_once_whatever_it_expands_to(
    make: Callable[[int], str], n: int
) -> None:
    document = parse(make(n), max_tokens=100_000)
    selections = sum(
        len(node.selections)
        for node in _selection_sets(document)  # every selection set, once
    )
    fragments = shape.fragments_of(document)
    for summary in (shape.depth_summary(fragments), shape.alias_summary(fragments)):
        for definition in document.definitions:
            if definition.kind == "operation_definition":
                summary.of(definition.selection_set)  # type: ignore[attr-defined]
        assert summary.work <= selections


def _selection_sets(document: object) -> list[object]:
    from graphql import SelectionSetNode, Visitor, visit

    found: list[object] = []

    class Collect(Visitor):
        def enter_selection_set(self, node: SelectionSetNode, *_: object) -> None:
            found.append(node)

    visit(document, Collect())  # type: ignore[arg-type]
    return found


def test_the_observed_attack_is_refused_by_the_alias_limit_with_the_expanded_count() -> None:
    operations = Operations(schema)
    prepared = operations.prepare(alias_bomb(20))
    messages = [e.message for e in prepared.errors]
    expected = sum(2**i for i in range(21))  # x_i counted 2^i times, z 2^20 times
    assert f"{expected} aliases found. Allowed: {MAX_ALIASES}" in messages


def test_the_node_estimate_of_an_exponential_document_is_exact_and_refused() -> None:
    text = (
        "query Q { viewer { ...F0 } } "
        + " ".join(
            f"fragment F{i} on Viewer {{ connections {{ id }} ...F{i + 1} ...F{i + 1} }}"
            for i in range(30)
        )
        + " fragment F30 on Viewer { id }"
    )
    with pytest.raises(limits.LimitExceeded) as caught:
        check_amounts(parse(text), None, None)
    assert caught.value.code == "MAX_NODE_LIMIT_EXCEEDED"
    fragments = shape.fragments_of(parse(text))
    nodes = limits.node_summary(fragments, {})
    assert nodes.done["F0"] == 50 * (2**30 - 1)  # 50 connections per copy, 2^30 - 1 copies
    assert nodes.work < 200


def _small_documents() -> list[str]:
    docs = []
    for n in range(1, 6):
        docs += [chain(n), diamond(n), alias_bomb(n), depth_chain(n)]
    docs += ["{ " + " ".join(f"a{i}: __typename" for i in range(k)) + " }" for k in (15, 16, 30)]
    deep = "id"
    for _ in range(12):
        deep = f"viewer {{ {deep} }}"
    docs += [
        f"query Deep {{ {deep} }}",
        "{ __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType {"
        " ofType { ofType { name } } } } } } } } } } } }",
        "fragment A on Query { ...B } fragment B on Query { ...A } query { ...A }",
        "query A { viewer { id } } query B { a: viewer { b: id } } { c: __typename }",
    ]
    return docs


@pytest.mark.parametrize("text", _small_documents())
def test_coop_limits_report_exactly_what_strawberrys_rules_report(text: str) -> None:
    document = parse(text)
    gschema = schema._schema
    ours = validate(gschema, document, [DepthLimit, AliasLimit])
    theirs = validate(
        gschema,
        document,
        [strawberry_depth(MAX_DEPTH, None, None), strawberry_aliases(MAX_ALIASES)],
    )
    assert sorted({e.message for e in ours}) == sorted({e.message for e in theirs})


@pytest.mark.parametrize(
    "text,message",
    [
        ("{ " + "viewer { id } " * 11 + "}", "More than 10 fields named 'viewer' side by side."),
        (
            "{ viewer { "
            + " ".join(f"...F{i}" for i in range(26))
            + " } } "
            + " ".join(f"fragment F{i} on Viewer {{ id }}" for i in range(26)),
            "More than 25 fragments side by side.",
        ),
    ],
)
def test_many_siblings_that_graphql_core_compares_pairwise_are_refused(
    text: str, message: str
) -> None:
    prepared = Operations(schema).prepare(text)
    assert message in [e.message for e in prepared.errors]


def nested_same_names(width: int, depth: int) -> str:
    """`width` same-named fields at each of `depth` levels: graphql-core compares each pair
    and, inside it, each pair of their children (within the sibling cap when width <= 10)."""
    inner = "value"
    for field in ("scores", "viewer")[2 - depth :]:
        inner = " ".join([f"{field} {{ {inner} }}"] * width)
    return "{ " + inner + " }"


def fragments_of_same_names(fields: int) -> str:
    spreads = " ".join(f"...G{j}" for j in range(25))
    frags = " ".join(
        f"fragment G{j} on Viewer {{ " + " ".join(["scores { value }"] * fields) + " }"
        for j in range(25)
    )
    return "{ " + " ".join([f"viewer {{ {spreads} }}"] * 10) + " } " + frags


COSTLY = [
    nested_same_names(10, 2),
    fragments_of_same_names(4),
    fragments_of_same_names(10),
]


@pytest.mark.parametrize("text", COSTLY)
def test_documents_within_the_caps_that_graphql_core_finds_costly_stop_at_the_budget(
    text: str,
) -> None:
    document = parse(text)
    allowed = budget.WORK_BASE + budget.WORK_PER_NODE * budget.ast_size(document)
    work = calls(
        lambda: budget.validate_within_budget(
            schema._schema, document, RULES, hide_suggestions=True
        )
    )
    sizing = calls(lambda: budget.ast_size(document))  # counting the nodes is work too
    assert work <= allowed + sizing + 100
    prepared = Operations(schema).prepare(text)
    assert [e.message for e in prepared.errors] == [budget.TOO_COSTLY]


@pytest.mark.parametrize(
    "text",
    [
        get_introspection_query(descriptions=True),
        '{ viewer { id handle score(scorer: "reach") { value explanation { reasons } } } }',
        nested_same_names(2, 2),
        fan_out(80),
        many_operations(80),
    ],
    ids=["introspection", "score", "a-few-repeats", "fan-out", "many-operations"],
)
def test_ordinary_documents_use_well_under_half_the_budget(text: str) -> None:
    document = parse(text)
    allowed = budget.WORK_BASE + budget.WORK_PER_NODE * budget.ast_size(document)
    work = calls(
        lambda: budget.validate_within_budget(
            schema._schema, document, RULES, hide_suggestions=True
        )
    )
    assert work < allowed / 2
    assert budget.TOO_COSTLY not in [e.message for e in Operations(schema).prepare(text).errors]
