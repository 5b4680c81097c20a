"""Compiled plans (coop.api.plans) answer exactly as graphql-core does.

Which documents get a plan, then a differential test: Hypothesis writes documents of the
planned shape (aliases, __typename, nested objects, granted, ungranted, unknown and empty
scorer names, repeated scorers), and each runs through the pipeline with plans and without;
the response bodies and the access-log rows written must be the same.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from graphql import parse
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from coop.api.context import ApiContext
from coop.api.operation import Operations
from coop.api.plans import compile_plan
from coop.api.schema import schema
from coop.api.services import ServiceBackend
from coop.consent.models import AccessLogEntry
from coop.jobs.scoring import ScoringFlow
from coop.vault import Vault
from tests.api.conftest import give_score
from tests.api.factories import grant_token, make_app, make_member, personal_token
from tests.api.test_authorization_matrix import PLANNED

HOT = '{ viewer { score(scorer: "reach") { value } } }'

PLANNED_DOCUMENTS = [
    HOT,
    PLANNED,
    "{ __typename viewer { id __typename } }",
    'query Hot { viewer { s: score(scorer: "reach") { id value computedAt '
    "range { min max } scorer { name version __typename } } } }",
    "query Q($s: String!) { viewer { score(scorer: $s) { value } } }",
    '{ viewer { score(scorer: "reach") { band { low high } atLeast threshold value } } }',
    'query Q($s: String! = "reach", $t: String!) { viewer { a: score(scorer: $s) { value } '
    "b: score(scorer: $t) { scorer { name } } } }",
]
# Variable values for the documents above: valid, missing, null, of the wrong type.
INPUTS: list[dict[str, Any] | None] = [
    None,
    {"s": "reach", "t": "cadence"},
    {"t": "reach"},
    {"s": None, "t": "reach"},
    {"s": 5, "t": ["reach"]},
    {"s": "nope", "t": "", "u": "ignored"},
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
    '{ viewer { score(scorer: "reach") { explanation { reasons } } } }',
    "{ viewer { handle } }",
    "{ viewer { scores { value } } }",
    "{ scorers { name } }",
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
            )
        )
    )
    return f'score(scorer: "{draw(st.sampled_from(SCORERS))}") {inner}'


@st.composite
def documents(draw: Any) -> str:
    viewer = draw(selections(st.one_of(st.sampled_from(["id", "__typename"]), score_fields())))
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


async def _logged(member_id: Any) -> Counter[str]:
    return Counter(await AccessLogEntry.filter(member_id=member_id).values_list("scope", flat=True))


async def test_plans_answer_exactly_like_graphql_core(
    app: Any, vault: Vault, flow: ScoringFlow
) -> None:
    member = await make_member(vault)
    await give_score(flow, member, "reach")
    await give_score(flow, member, "cadence")  # scored, but not granted below
    backend = ServiceBackend(app.state.runtime)
    # Every disclosure level: exact, band and threshold (the gate refuses and nulls fields).
    levels = [["score:reach"], ["score:reach:band"], ["score:reach:atleast:40", "score:cadence"]]
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
                assert answers[0] == answers[1], (text, variables)
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
