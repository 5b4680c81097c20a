"""Compiled plans (coop.api.plans) answer exactly as graphql-core does.

Which documents get a plan, then differential tests: Hypothesis writes documents of the
planned shape (aliases, __typename, nested objects, granted, ungranted, unknown and empty
scorer names, repeated scorers), and each runs through the pipeline with plans and without
(graphql-core's executor with strawberry's execution context and resolvers, as strawberry's
own `Schema.execute` runs them); then every error path is forced (a non-null field null, a
list item null, a resolver raising, a serializer failing, the disclosure gate refusing, a
scope denied). The response bodies must be the same byte for byte, and so must the
access-log rows written.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from graphql import parse
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from coop.api import ids
from coop.api.context import ApiContext
from coop.api.operation import Operations
from coop.api.plans import compile_plan
from coop.api.schema import schema
from coop.api.services import ServiceBackend
from coop.api.types import Contribution, Score, ScoreHistoryEntry
from coop.consent.models import AccessLogEntry
from coop.jobs.scoring import ScoringFlow
from coop.vault import Vault
from tests.api.conftest import give_score
from tests.api.factories import grant_token, make_app, make_member, personal_token
from tests.api.test_authorization_matrix import PLANNED

HOT = '{ viewer { score(scorer: "reach") { value } } }'
EXPLAINED = (
    '{ viewer { score(scorer: "reach") { value explanation { reasons '
    "contributions { amount reason record } breakdown { name value } } } } }"
)
CHANGED = (
    '{ viewer { score(scorer: "reach") { change { previous delta '
    "causes { kind amount reason record } } } } }"
)
HISTORY = (
    '{ viewer { scoreHistory(scorer: "reach", first: 1) { edges { cursor node { value '
    "scorerVersion computedAt change delta } } pageInfo { hasNextPage endCursor } } } }"
)
HISTORY_EXPLAINED = (
    "query H($s: String!, $a: String!) { viewer { h: scoreHistory(scorer: $s, first: 5, "
    "after: $a) { edges { node { value contributions { amount reason record } } } "
    "pageInfo { hasNextPage } } } }"
)

PLANNED_DOCUMENTS = [
    HOT,
    PLANNED,
    "{ __typename viewer { id __typename } }",
    'query Hot { viewer { s: score(scorer: "reach") { id value computedAt '
    "range { min max } scorer { name version __typename } } } }",
    "query Q($s: String!) { viewer { score(scorer: $s) { value } } }",
    "{ viewer { scores { value } } }",
    "{ viewer { id all: scores { __typename value computedAt range { min max } "
    "scorer { name } band { low high } atLeast threshold } } }",
    '{ viewer { score(scorer: "reach") { band { low high } atLeast threshold value } } }',
    'query Q($s: String! = "reach", $t: String!) { viewer { a: score(scorer: $s) { value } '
    "b: score(scorer: $t) { scorer { name } } } }",
    EXPLAINED,
    CHANGED,
    HISTORY,
    HISTORY_EXPLAINED,
    '{ viewer { score(scorer: "reach") { stale value } } }',
    "query Q($s: String!) { viewer { a: score(scorer: $s) { explanation { reasons } } "
    'b: score(scorer: "cadence") { change { delta } explanation { reasons } } '
    'c: scoreHistory(scorer: $s, first: 100, after: "o1") { edges { cursor } } } }',
]
# Variable values for the documents above: valid, missing, null, of the wrong type.
INPUTS: list[dict[str, Any] | None] = [
    None,
    {"s": "reach", "t": "cadence", "a": "o1"},
    {"t": "reach"},
    {"s": None, "t": "reach"},
    {"s": 5, "t": ["reach"]},
    {"s": "nope", "t": "", "u": "ignored"},
    {"s": "reach", "a": "o9"},
]
NOT_PLANNED = [
    # fragments, variables, directives, several operations, duplicate keys
    '{ viewer { ...F } } fragment F on Viewer { score(scorer: "reach") { value } }',
    'query Q($n: Int! = 1) { viewer { score(scorer: "reach") { value } } }',
    "query Q($s: String! @deprecated) { viewer { score(scorer: $s) { value } } }",
    '{ viewer { score(scorer: "reach") @include(if: true) { value } } }',
    '{ viewer { score(scorer: "reach") { ... on Score { value } } } }',
    "query A { viewer { id } } query B { viewer { id } }",
    '{ viewer { score(scorer: "reach") { value } score(scorer: "reach") { id } } }',
    # resolvers without a plan, permission-gated fields, lists, interfaces, mutations
    "{ viewer { scores { explanation { reasons } } } }",
    "{ viewer { handle } }",
    # a scoreHistory argument from a variable that is not a String!
    'query Q($n: Int!) { viewer { scoreHistory(scorer: "reach", first: $n) '
    "{ edges { cursor } } } }",
    "{ scorers { name } }",
    # a non-null reading field beside another reading field
    '{ viewer { scores { value } score(scorer: "reach") { value } } }',
    '{ viewer { score(scorer: "reach") { stale change { delta } } } }',
    '{ node(id: "x") { id } }',
    "mutation { setSharingPaused(paused: true) { __typename } }",
]


@pytest.mark.parametrize("text", PLANNED_DOCUMENTS)
def test_simple_reads_are_planned(text: str) -> None:
    assert compile_plan(schema, parse(text)) is not None


@pytest.mark.parametrize("text", NOT_PLANNED)
def test_everything_else_runs_through_graphql_core(text: str) -> None:
    assert compile_plan(schema, parse(text)) is None


# -- the differential test ------------------------------------------------------------------

SCORERS = ("reach", "cadence", "nope", "")
RANGE = st.lists(st.sampled_from(["min", "max", "__typename"]), min_size=1, unique=True)
REF = st.lists(st.sampled_from(["name", "version", "__typename"]), min_size=1, unique=True)


@st.composite
def selections(draw: Any, choices: st.SearchStrategy[str]) -> str:
    """A selection set, some fields under aliases, no response key twice (graphql-core would
    merge those; the planner leaves them to it)."""
    parts, keys = [], set()
    for i, item in enumerate(draw(st.lists(choices, min_size=1, max_size=5))):
        name = item.split("(")[0].split(" ")[0]
        if name not in keys and draw(st.booleans()):
            keys.add(name)
            parts.append(item)
        else:
            parts.append(f"k{i}: {item}")
    return "{ " + " ".join(parts) + " }"


@st.composite
def score_fields(draw: Any) -> str:
    inner = draw(
        selections(
            st.one_of(
                st.sampled_from(
                    ["value", "id", "computedAt", "__typename", "atLeast", "threshold"]
                ),
                st.just("band { low high }"),
                RANGE.map(lambda f: "range { " + " ".join(f) + " }"),
                REF.map(lambda f: "scorer { " + " ".join(f) + " }"),
                st.sampled_from(
                    [
                        "explanation { reasons contributions { amount reason record } }",
                        "explanation { breakdown { name value } __typename }",
                        "change { previous delta causes { kind amount reason record } }",
                    ]
                ),
            )
        )
    )
    return f'score(scorer: "{draw(st.sampled_from(SCORERS))}") {inner}'


@st.composite
def history_fields(draw: Any) -> str:
    node = draw(
        selections(
            st.sampled_from(
                [
                    "value",
                    "scorerVersion",
                    "computedAt",
                    "change",
                    "delta",
                    "contributions { amount reason }",
                    "__typename",
                ]
            )
        )
    )
    first = draw(st.sampled_from([1, 2, 100]))
    after = draw(st.sampled_from(["", ', after: "o1"', ', after: "o7"', ', after: "x"']))
    scorer = draw(st.sampled_from(SCORERS))
    return (
        f'scoreHistory(scorer: "{scorer}", first: {first}{after}) '
        f"{{ edges {{ cursor node {node} }} pageInfo {{ hasNextPage endCursor }} }}"
    )


@st.composite
def documents(draw: Any) -> str:
    viewer = draw(
        selections(
            st.one_of(st.sampled_from(["id", "__typename"]), score_fields(), history_fields())
        )
    )
    root = draw(selections(st.sampled_from(["viewer " + viewer, "__typename"])))
    return root


def generated() -> list[str]:
    found: list[str] = []

    @settings(
        max_examples=60,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(documents())
    def collect(text: str) -> None:
        found.append(text)

    collect()
    return found


def _bytes(body: dict[str, Any]) -> bytes:
    """The body as the transport sends it (key order kept)."""
    return json.dumps(body, separators=(",", ":")).encode()


async def _logged(member_id: Any) -> Counter[str]:
    return Counter(await AccessLogEntry.filter(member_id=member_id).values_list("scope", flat=True))


async def test_plans_answer_exactly_like_graphql_core(
    app: Any, vault: Vault, flow: ScoringFlow
) -> None:
    member = await make_member(vault)
    await give_score(flow, member, "reach")
    await give_score(flow, member, "reach", posts=5)  # a change, and two in the history
    await give_score(flow, member, "cadence")  # scored, but not granted below
    backend = ServiceBackend(app.state.runtime)
    # Every disclosure level: exact, band and threshold (the gate refuses and nulls fields);
    # history granted with the exact level, and with a level that does not allow it.
    levels = [
        ["score:reach", "score:reach:history"],
        ["score:reach:band", "score:reach:history"],
        ["score:reach:atleast:40", "score:cadence", "score:cadence:history"],
    ]
    tokens = [
        (await grant_token(member, await make_app(vault), scopes)).access_token for scopes in levels
    ]
    tokens.append(await personal_token(member, ["score:cadence:band"]))
    with_plans, without = Operations(schema), Operations(schema, plans=False)
    texts = generated() + PLANNED_DOCUMENTS
    planned = 0
    for token in tokens:
        principal = await backend.authenticate(token)
        assert principal is not None
        for text in texts:
            for variables in INPUTS if "$" in text else [None]:
                answers, rows = [], []
                for operations in (with_plans, without):
                    before = await _logged(member.id)
                    context = ApiContext(principal=principal, backend=backend, request_id="r-1")
                    answers.append(
                        await operations.run(
                            text,
                            variables=variables,
                            operation_name=None,
                            context=context,
                            request_id="r-1",
                        )
                    )
                    rows.append(await _logged(member.id) - before)
                assert _bytes(answers[0]) == _bytes(answers[1]), (text, variables)
                assert rows[0] == rows[1], (text, variables)
            planned += with_plans.prepare(text).plan is not None
    # Every generated document took the plan, but those the alias limit refuses.
    valid = [text for text in texts if not with_plans.prepare(text).errors]
    assert len(valid) > len(texts) // 2
    assert planned == len(valid) * len(tokens)


def test_a_field_with_a_permission_check_is_never_planned(monkeypatch: pytest.MonkeyPatch) -> None:
    """Even listed as planned, a field guarded by a permission extension (here `handle`,
    scope `profile`) goes through graphql-core, where strawberry runs the check."""
    from coop.api import plans
    from coop.api.viewer import viewer_for

    monkeypatch.setitem(plans.PLANNED_SYNC, ("Viewer", "handle"), viewer_for)
    assert compile_plan(schema, parse("{ viewer { handle } }")) is None
    assert compile_plan(schema, parse("{ viewer { id } }")) is not None


# -- every error path, forced ---------------------------------------------------------------

FORCED_DOCUMENTS: list[tuple[str, dict[str, Any] | None]] = [
    (HOT, None),
    ('{ viewer { id score(scorer: "reach") { value computedAt scorer { name } } } }', None),
    ("{ viewer { scores { value computedAt range { min max } } } }", None),
    ("{ __typename viewer { id scores { id scorer { name version } } } }", None),
    (
        "query Q($s: String!) { viewer { a: score(scorer: $s) { computedAt value } "
        'b: score(scorer: "cadence") { value range { max } } } }',
        {"s": "reach"},
    ),
    ('{ viewer { score(scorer: "reach") { band { low high } atLeast threshold value } } }', None),
    (EXPLAINED, None),
    (CHANGED, None),
    ('{ viewer { score(scorer: "reach") { stale } } }', None),
    (HISTORY, None),
    (HISTORY_EXPLAINED, {"s": "reach", "a": "o1"}),
    ('{ viewer { scoreHistory(scorer: "reach", first: 0) { edges { cursor } } } }', None),
]
# Each scope set is a token: exact for both scorers, band, a threshold, one scorer denied,
# no score scope at all.
FORCED_SCOPES = [
    ["score:reach", "score:cadence", "score:reach:history"],
    ["score:reach:band", "score:cadence"],
    ["score:reach:atleast:40"],
    ["score:cadence"],
    ["profile"],
]


def _score_of(change: Callable[[Score], Score | None]) -> Callable[[Any, str], Score | None]:
    original = Score.of

    def of(view: Any, subject: str) -> Score | None:
        return change(original(view, subject))

    return of


def _entry_of(change: Callable[[Any], Any]) -> Callable[[Any], Any]:
    original = ScoreHistoryEntry.of

    def of(view: Any) -> Any:
        return change(original(view))

    return of


def _contributions_of(change: Callable[[list[Any]], Any]) -> Callable[[Any], Any]:
    original = Contribution.of

    def of(views: Any) -> Any:
        return change(original(views))

    return of


def _explained(change: Callable[[list[Any]], list[Any]]) -> Callable[..., Any]:
    """ServiceBackend.explain with each explanation's reasons changed by `change`."""
    original = ServiceBackend.explain

    async def explain(self: Any, principal: Any, scores: Any) -> Any:
        found = await original(self, principal, scores)
        return {k: replace(v, reasons=change(list(v.reasons))) for k, v in found.items()}

    return explain


def _set(**values: Any) -> Callable[[Any], Any]:
    def change(score: Any) -> Any:
        for name, value in values.items():
            setattr(score, name, value)
        return score

    return change


def _raise(*_: Any, **__: Any) -> Any:
    raise RuntimeError("forced fault")


def _then_none(items: list[Any]) -> list[Any]:
    return [*items, None]


def _none(_: Any) -> None:
    return None


def _only_reach(score: Score) -> Score | None:
    return score if score.scorer.name == "reach" else None


# fault -> (what to patch, attribute, replacement)
FAULTS: dict[str, tuple[Any, str, Any]] = {
    "non-null leaf null": (Score, "of", staticmethod(_score_of(_set(computed_at=None)))),
    "non-null object null": (Score, "of", staticmethod(_score_of(_set(range=None)))),
    "list item null": (Score, "of", staticmethod(_score_of(_only_reach))),
    "serializer raises": (Score, "of", staticmethod(_score_of(_set(computed_at="yesterday")))),
    "serializer refuses": (Score, "of", staticmethod(_score_of(_set(value="high")))),
    "resolver raises": (ServiceBackend, "scores", _raise),
    "sync resolver raises": (ids, "encode", _raise),
    "explanation resolver raises": (ServiceBackend, "explain", _raise),
    "change resolver raises": (ServiceBackend, "score_states", _raise),
    "history resolver raises": (ServiceBackend, "score_history", _raise),
    "contribution item null": (Contribution, "of", staticmethod(_contributions_of(_then_none))),
    "contributions null": (Contribution, "of", staticmethod(_contributions_of(_none))),
    # A list of leaves (`reasons: [String!]!`), completed without a call per item.
    "reason item null": (ServiceBackend, "explain", _explained(_then_none)),
    "reason serializer raises": (
        ServiceBackend,
        "explain",
        _explained(lambda reasons: [*reasons, {"not": "a string"}]),
    ),
    "history leaf null": (ScoreHistoryEntry, "of", staticmethod(_entry_of(_set(value=None)))),
    "history serializer refuses": (
        ScoreHistoryEntry,
        "of",
        staticmethod(_entry_of(_set(value="high"))),
    ),
    "history enum refuses": (
        ScoreHistoryEntry,
        "of",
        staticmethod(_entry_of(_set(change="sideways"))),
    ),
}


@pytest.mark.parametrize("fault", [None, *FAULTS])
async def test_plans_answer_exactly_like_graphql_core_on_every_error_path(
    app: Any, vault: Vault, flow: ScoringFlow, monkeypatch: pytest.MonkeyPatch, fault: str | None
) -> None:
    member = await make_member(vault)
    await give_score(flow, member, "reach")
    await give_score(flow, member, "reach", posts=5)
    await give_score(flow, member, "cadence")
    backend = ServiceBackend(app.state.runtime)
    principals = []
    for scopes in FORCED_SCOPES:
        token = (await grant_token(member, await make_app(vault), scopes)).access_token
        principal = await backend.authenticate(token)
        assert principal is not None
        principals.append(principal)
    with_plans, without = Operations(schema), Operations(schema, plans=False)

    async def answer(operations: Operations, principal: Any, text: str, variables: Any) -> bytes:
        context = ApiContext(principal=principal, backend=backend, request_id="r-2")
        body = await operations.run(
            text, variables=variables, operation_name=None, context=context, request_id="r-2"
        )
        return _bytes(body)

    cases = [(p, text, variables) for p in principals for text, variables in FORCED_DOCUMENTS]
    unfaulted = [await answer(without, *case) for case in cases]
    if fault is not None:
        target, name, replacement = FAULTS[fault]
        monkeypatch.setattr(target, name, replacement)
    changed = 0
    for case, plain in zip(cases, unfaulted, strict=True):
        text = case[1]
        assert with_plans.prepare(text).plan is not None, text
        answers, rows = [], []
        for operations in (with_plans, without):
            before = await _logged(member.id)
            answers.append(await answer(operations, *case))
            rows.append(await _logged(member.id) - before)
        assert answers[0] == answers[1], (fault, case)
        assert rows[0] == rows[1], (fault, case)
        changed += answers[0] != plain
    # The fault was met: it changed some answers (and without one, none changed).
    assert (changed > 0) is (fault is not None), changed


# -- the plans' own shortcuts ---------------------------------------------------------------


def _planned_field(fields: Any, name: str) -> Any:
    """The compiled field called `name`, anywhere below `fields`."""
    for field in fields:
        if field.node.name.value == name:
            return field
        found = _planned_field(field.fields, name)
        if found is not None:
            return found
    return None


def test_values_below_which_nothing_reads_are_completed_in_one_call() -> None:
    """An explanation's and a history page's values are completed by one compiled function
    each (its general path behind it, taken on any null, error or refusal: the error paths
    above), and literal arguments are coerced once, variables per run."""
    explained = compile_plan(schema, parse(EXPLAINED))
    history = compile_plan(schema, parse(HISTORY))
    variable = compile_plan(schema, parse(HISTORY_EXPLAINED))
    assert explained is not None and history is not None and variable is not None
    assert _planned_field(explained.fields, "explanation").pure is not None
    page = _planned_field(history.fields, "scoreHistory")
    assert page.pure is not None
    assert dict(page.given) == {"scorer": "reach", "first": 1, "after": None}
    assert _planned_field(variable.fields, "scoreHistory").given is None
    # a value read by a gated field is completed the general way, after the gate
    assert _planned_field(explained.fields, "score").pure is None


@pytest.mark.parametrize("shape", [tuple, iter], ids=["tuple", "iterator"])
async def test_lists_given_as_other_sequences_answer_like_graphql_core(
    app: Any,
    vault: Vault,
    flow: ScoringFlow,
    monkeypatch: pytest.MonkeyPatch,
    shape: Callable[[list[Any]], Any],
) -> None:
    """The one-call completion takes lists and tuples; any other iterable (read once only)
    goes the general way. Both answer as graphql-core does."""
    member = await make_member(vault)
    await give_score(flow, member, "reach")
    await give_score(flow, member, "reach", posts=5)
    backend = ServiceBackend(app.state.runtime)
    scopes = ["score:reach", "score:reach:history"]
    token = (await grant_token(member, await make_app(vault), scopes)).access_token
    principal = await backend.authenticate(token)
    assert principal is not None
    monkeypatch.setattr(Contribution, "of", staticmethod(_contributions_of(shape)))
    with_plans, without = Operations(schema), Operations(schema, plans=False)
    for text, variables in ((EXPLAINED, None), (HISTORY_EXPLAINED, {"s": "reach", "a": ""})):
        bodies = []
        for operations in (with_plans, without):
            context = ApiContext(principal=principal, backend=backend, request_id="r-3")
            body = await operations.run(
                text, variables=variables, operation_name=None, context=context, request_id="r-3"
            )
            bodies.append(_bytes(body))
        assert bodies[0] == bodies[1], text
        assert b'"contributions":[{"amount":' in bodies[0], bodies[0]
