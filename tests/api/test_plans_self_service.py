"""Compiled plans for the self-service reads (personal token, `member:manage`): grants and the
sharing pause, the access log, connections, scorer settings answer exactly as graphql-core.

As in tests/api/test_plans.py: documents of the planned shape run through the pipeline with
plans and without, for tokens that hold the scope and tokens that do not (strawberry's
permission refuses: FORBIDDEN), then with every error path forced (a resolver raising, a
non-null field or list item null, a serializer failing or refusing, a page out of bounds).
Bodies must be the same byte for byte and so must the access-log rows (self-service reads
write none). One exception, on PostgreSQL only: sibling fields read concurrently (in
graphql-core too), so when several of them fail after their queries, their errors come in
the order the database answered; there the errors are compared as a set, the data still
byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from graphql import parse
from strawberry.permission import BasePermission

from coop.api import plans, viewer
from coop.api.context import ApiContext
from coop.api.member_types import AccessLogEntry, Connection, Grant, MemberScorer
from coop.api.operation import Operations
from coop.api.plans import compile_plan
from coop.api.schema import schema
from coop.api.services import ServiceBackend
from coop.api.viewer import read_sharing_paused
from coop.connectors import service as connectors
from coop.connectors.models import Connection as ConnectionRow
from coop.consent import accesslog, grants
from coop.jobs.scoring import ScoringFlow
from coop.types import utcnow
from coop.vault import Vault
from tests.api.conftest import give_score
from tests.api.factories import grant_token, make_app, make_member, personal_token
from tests.api.test_plans import _bytes, _logged

GRANTS = "{ viewer { sharingPaused grants { appName status scopes lastAccessAt } } }"
LOG = (
    "{ viewer { accessLog(first: 10) { edges { node { appName scope at } } "
    "pageInfo { hasNextPage endCursor } } } }"
)
SETTINGS = (
    "{ viewer { connections { title state records } scorerSettings { enabled "
    "awaitingConsent scorer { name version } } } }"
)
PLANNED_DOCUMENTS = [
    GRANTS,
    LOG,
    SETTINGS,  # the three documents bench/graphql.py measures
    "{ viewer { grants { __typename id appName scopes levels { scorer level threshold history }"
    " status createdAt expiresAt lastAccessAt pausedByYou } } }",
    "query Mine { viewer { paused: sharingPaused id g: grants { status } } }",
    '{ viewer { accessLog(first: 2, after: "o1") { edges { cursor node { __typename appName '
    "scope resource at } } pageInfo { hasNextPage endCursor } } } }",
    "{ viewer { accessLog(first: 3) { pageInfo { endCursor } } } }",
    '{ viewer { accessLog(first: 50, after: "o99") { edges { cursor } } } }',
    # bad pages: the resolver's own BAD_USER_INPUT, located at the field
    "{ viewer { accessLog(first: 0) { edges { cursor } } sharingPaused } }",
    "{ viewer { accessLog(first: 101) { edges { cursor } } } }",
    "{ viewer { connections { id connector title state lastSyncAt nextSyncAt records "
    "failureReason __typename } } }",
    "{ viewer { scorerSettings { enabled awaitingConsent scorer { name version title "
    "description reads homepage range { min max } } } } }",
    # a String! variable, not given here: refused alike
    "query Page($a: String!) { viewer { accessLog(first: 5, after: $a) { edges { cursor } } } }",
    # beside the app-facing reads, and every self-service field at once
    '{ viewer { sharingPaused score(scorer: "reach") { value } } }',
    '{ viewer { score(scorer: "reach") { value } grants { appName } connections { title } } }',
    "{ viewer { sharingPaused grants { appName } accessLog(first: 5) { edges { cursor } } "
    "connections { state } scorerSettings { enabled } } }",
]
NOT_PLANNED = [
    # a variable of a type other than String! (the plans coerce only those)
    "query Page($n: Int!) { viewer { accessLog(first: $n) { edges { cursor } } } }",
    # a non-null reading field (`scores`) beside other reading fields
    "{ viewer { scores { value } grants { appName } connections { title } } }",
    # a field below that the plans do not know (a resolver of its own)
    "{ viewer { grants { appName } handle } }",
]


@pytest.mark.parametrize("text", PLANNED_DOCUMENTS)
def test_self_service_reads_are_planned(text: str) -> None:
    assert compile_plan(schema, parse(text)) is not None


@pytest.mark.parametrize("text", NOT_PLANNED)
def test_other_self_service_documents_run_through_graphql_core(text: str) -> None:
    assert compile_plan(schema, parse(text)) is None


class Anyone(BasePermission):
    message = "never asked"

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        return True


def test_a_field_is_planned_only_with_coops_scope_permission(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A planned field guarded by any permission but `needs_scope`'s (here `sharingPaused`
    with another one) goes through graphql-core, where strawberry runs the check."""
    text = "{ viewer { sharingPaused } }"
    assert compile_plan(schema, parse(text)) is not None
    field = schema.get_field_for_type("sharingPaused", "Viewer")
    assert field is not None
    [extension] = field.extensions
    monkeypatch.setattr(extension, "permissions", [*extension.permissions, Anyone()])
    assert compile_plan(schema, parse(text)) is None
    monkeypatch.setattr(extension, "permissions", [])
    assert compile_plan(schema, parse(text)) is None
    monkeypatch.undo()
    monkeypatch.setattr(extension, "fail_silently", True)
    assert compile_plan(schema, parse(text)) is None
    # `handle` (scope `profile`) is not a planned field: listing it would not step around
    # its permission either, the plan would check it.
    monkeypatch.undo()
    monkeypatch.setitem(plans.PLANNED_ASYNC, ("Viewer", "handle"), (None, read_sharing_paused))
    assert compile_plan(schema, parse("{ viewer { handle } }")) is not None


def _comparable(body: bytes, engine: str) -> Any:
    """The body as it must match (see the module docstring for PostgreSQL's errors)."""
    if engine == "sqlite":
        return body
    parsed = json.loads(body)
    errors = sorted(json.dumps(e, sort_keys=True) for e in parsed.pop("errors", []))
    return _bytes(parsed), errors


# -- the differential test ------------------------------------------------------------------

# A personal token with the scope, one without it (and a score scope), an app's token.
SCOPES = [["member:manage"], ["member:manage", "score:reach", "profile"], ["score:reach"]]


async def _member_with_everything(app: Any, vault: Vault, flow: ScoringFlow) -> Any:
    """A member with grants in several states and levels, reads in the log, connections in
    several states (one of a connector not installed here), one scorer enabled."""
    member = await make_member(vault)
    await give_score(flow, member, "reach")
    made = [
        await grant_token(member, await make_app(vault, name), scopes)
        for name, scopes in [
            ("Exact App", ["score:reach", "score:reach:history", "profile"]),
            ("Band App", ["score:reach:band", "score:cadence:atleast:40"]),
            ("Paused App", ["score:cadence"]),
        ]
    ]
    await grants.pause_grant(member_id=member.id, grant_id=made[2].grant_id)
    start = utcnow()
    for i in range(13):
        await accesslog.record(
            member_id=member.id,
            scope="score:reach",
            resource="score:reach",
            app_name="Exact App" if i % 3 else "you",
            grant_id=made[0].grant_id if i % 3 else None,
            app_id=made[0].app_id if i % 3 else None,
            at=start - timedelta(seconds=i // 2),  # pairs of reads at the same instant
        )
    registry = app.state.runtime.jobs.registry
    rows = []
    for url in ("https://one.example/feed", "https://two.example/feed", "https://3.example/"):
        view = await connectors.create_connection(
            vault=vault,
            registry=registry,
            member_id=member.id,
            connector="feed",
            config={"url": url},
        )
        rows.append(view.id)
    await ConnectionRow.filter(id=rows[1]).update(
        status="failing",
        status_reason="The feed answered 404.",
        records_count=7,
        last_sync_at=start,
    )
    await ConnectionRow.filter(id=rows[2]).update(connector="gone", status="strange")
    return member


async def test_self_service_plans_answer_exactly_like_graphql_core(
    app: Any, vault: Vault, flow: ScoringFlow
) -> None:
    member = await _member_with_everything(app, vault, flow)
    backend = ServiceBackend(app.state.runtime)
    tokens = [await personal_token(member, scopes) for scopes in SCOPES]
    tokens.append((await grant_token(member, await make_app(vault), ["score:reach"])).access_token)
    with_plans, without = Operations(schema), Operations(schema, plans=False)
    forbidden = 0
    for paused in (False, True):
        if paused:
            await grants.pause_sharing(member_id=member.id)
        for token in tokens:
            principal = await backend.authenticate(token)
            if principal is None:
                continue  # the app's token while sharing is paused
            for text in PLANNED_DOCUMENTS:
                assert with_plans.prepare(text).plan is not None, text
                answers, rows = [], []
                for operations in (with_plans, without):
                    before = await _logged(member.id)
                    context = ApiContext(principal=principal, backend=backend, request_id="r-3")
                    answers.append(
                        _bytes(
                            await operations.run(
                                text,
                                variables=None,
                                operation_name=None,
                                context=context,
                                request_id="r-3",
                            )
                        )
                    )
                    rows.append(await _logged(member.id) - before)
                assert answers[0] == answers[1], (text, principal.scopes)
                assert rows[0] == rows[1], (text, principal.scopes)
                forbidden += b'"required_scope":"member:manage"' in answers[0]
    # The refusals were met: the tokens without the scope, on every document of them all.
    assert forbidden >= 2 * len(PLANNED_DOCUMENTS) - 2


# -- every error path, forced ---------------------------------------------------------------

FORCED_DOCUMENTS = [
    GRANTS,
    LOG,
    SETTINGS,
    "{ viewer { grants { id levels { scorer level } createdAt pausedByYou } } }",
    '{ viewer { accessLog(first: 4, after: "o2") { edges { cursor node { resource at } } '
    "pageInfo { hasNextPage } } } }",
    "{ viewer { connections { id state lastSyncAt failureReason } sharingPaused } }",
]


def _of(kind: Any, change: Callable[[Any], Any]) -> Any:
    original = kind.of

    def of(view: Any) -> Any:
        return change(original(view))

    return staticmethod(of)


def _set(**values: Any) -> Callable[[Any], Any]:
    def change(item: Any) -> Any:
        for name, value in values.items():
            setattr(item, name, value)
        return item

    return change


def _raise(*_: Any, **__: Any) -> Any:
    raise RuntimeError("forced fault")


async def _yes(*_: Any, **__: Any) -> Any:
    return "yes"


def _null_when(**values: Any) -> Callable[[Any], Any]:
    """Null the items whose attributes hold `values` (the same items on both paths)."""

    def change(item: Any) -> Any:
        return None if all(getattr(item, k) == v for k, v in values.items()) else item

    return change


def _no_page_info(*_: Any) -> None:
    return None


# fault -> [(what to patch, attribute, replacement)]
FAULTS: dict[str, list[tuple[Any, str, Any]]] = {
    "resolvers raise": [
        (ServiceBackend, name, _raise)
        for name in ("grants", "sharing_paused", "access_log", "connections", "member_scorers")
    ],
    "non-null leaf null": [
        (Grant, "of", _of(Grant, _set(app_name=None))),
        (AccessLogEntry, "of", _of(AccessLogEntry, _set(at=None))),
        (Connection, "of", _of(Connection, _set(records=None))),
        (MemberScorer, "of", _of(MemberScorer, _set(enabled=None))),
    ],
    "non-null object null": [
        (MemberScorer, "of", _of(MemberScorer, _set(scorer=None))),
        (viewer, "page_info", _no_page_info),
    ],
    "list item null": [
        (Grant, "of", _of(Grant, _null_when(app_name="Band App"))),
        (AccessLogEntry, "of", _of(AccessLogEntry, _null_when(app_name="you"))),
        (Connection, "of", _of(Connection, _null_when(title="gone"))),
        (MemberScorer, "of", _of(MemberScorer, _null_when(enabled=False))),
    ],
    "serializer raises": [
        (Grant, "of", _of(Grant, _set(created_at="yesterday"))),
        (AccessLogEntry, "of", _of(AccessLogEntry, _set(at="now"))),
        (Connection, "of", _of(Connection, _set(last_sync_at="never"))),
    ],
    "serializer refuses": [
        (Grant, "of", _of(Grant, _set(status="active"))),  # not the enum
        (Connection, "of", _of(Connection, _set(state="ok", records="many"))),
        (ServiceBackend, "sharing_paused", _yes),
    ],
}


@pytest.mark.parametrize("fault", [None, *FAULTS])
async def test_self_service_plans_answer_exactly_like_graphql_core_on_every_error_path(
    app: Any,
    vault: Vault,
    flow: ScoringFlow,
    monkeypatch: pytest.MonkeyPatch,
    engine: str,
    fault: str | None,
) -> None:
    member = await _member_with_everything(app, vault, flow)
    backend = ServiceBackend(app.state.runtime)
    principals = []
    for scopes in SCOPES:
        principal = await backend.authenticate(await personal_token(member, scopes))
        assert principal is not None
        principals.append(principal)
    with_plans, without = Operations(schema), Operations(schema, plans=False)

    async def answer(operations: Operations, principal: Any, text: str) -> bytes:
        context = ApiContext(principal=principal, backend=backend, request_id="r-4")
        body = await operations.run(
            text, variables=None, operation_name=None, context=context, request_id="r-4"
        )
        return _bytes(body)

    cases = [(p, text) for p in principals for text in FORCED_DOCUMENTS]
    unfaulted = [await answer(without, *case) for case in cases]
    for target, name, replacement in FAULTS[fault] if fault is not None else []:
        monkeypatch.setattr(target, name, replacement)
    changed = 0
    for case, plain in zip(cases, unfaulted, strict=True):
        assert with_plans.prepare(case[1]).plan is not None, case[1]
        answers, rows = [], []
        for operations in (with_plans, without):
            before = await _logged(member.id)
            answers.append(await answer(operations, *case))
            rows.append(await _logged(member.id) - before)
        assert _comparable(answers[0], engine) == _comparable(answers[1], engine), (fault, case)
        assert rows[0] == rows[1], (fault, case)
        changed += answers[0] != plain
    # The fault was met: it changed some answers (and without one, none changed).
    assert (changed > 0) is (fault is not None), changed
