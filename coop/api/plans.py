"""Compiled plans: the commonest reads answered without graphql-core's executor.

Apps poll a few small documents over and over, above all
`{ viewer { score(scorer: "reach") { value } } }`. When a document's text is first prepared
(parsed and validated, `coop.api.operation`), `compile_plan` checks whether it has a simple
shape and, if so, turns it into a plan: which fields to read, in which order, under which
response keys, with which serializers. Running a plan does what graphql-core's executor
would do for that document, minus the executor's general machinery (per-request execution
context, field collection, awaitable completion), which costs more than the read itself.

The shape, checked field by field against the schema (anything else returns None and the
document runs through graphql-core as before):

- a single query operation without directives, fields only (no fragments), each response
  key used once, its variables (if any) all of type `String!`, coerced by graphql-core's own
  `get_variable_values`;
- `Query.viewer`, `Viewer.score(scorer: "<literal>" or $variable)` and `Viewer.scores`, the
  resolver fields in PLANNED_SYNC and PLANNED_ASYNC: the plan calls the very functions their
  resolvers call (`viewer_for`, `read_score`, `read_scores`), so the consent check and the
  access-log entry are the same;
- any strawberry basic field (no resolver, no arguments, `is_basic_field`) of a leaf or
  object type, read as strawberry reads it (`StrawberryField.get_result`) and serialized with
  the same scalar; `__typename`; a list (of leaves or objects, not of lists) whose items read
  nothing more. Interfaces and unions are not planned;
- the self-service fields (`Viewer.grants`, `sharingPaused`, `connections`, `scorerSettings`,
  `accessLog(…)`), each behind its `needs_scope` permission, which the plan checks as
  strawberry's PermissionExtension does (`RequireScope.allows`, then the permission's own
  `on_unauthorized`), after the arguments and before the resolver's function;
- no field with any other field extension or permission class, planned or not: a plan never
  steps around a permission check (tests hold this). A planned async field that may not be null
  must be the only field of its selection that reads (its failure nulls the parent: with no
  sibling still running, that is exactly what graphql-core does). The
  one extension planned is the disclosure gate (`coop.api.disclosed`) on a basic field: the
  plan calls the same `check_disclosure` before reading the field, so a field above the
  grant's level is refused exactly as graphql-core refuses it.

Errors are located (`graphql.located_error`) and null is propagated to the nearest nullable
field exactly as the GraphQL specification (and graphql-core) does; sibling resolver fields
run concurrently, as in graphql-core, so their access-log entries share one commit.
Sub-objects that read nothing are completed in order, as graphql-core completes them; a
value below which nothing reads is completed by one function compiled with the plan
(`_pure`), which hands anything unusual (a null where none may be, an exception, a refused
serialization) back to the general path. Literal arguments are coerced once, when the plan
is compiled, by the same `get_argument_values`.
tests/api/test_plans.py and test_plans_self_service.py run documents through both paths and
compare every answer byte for byte, with every error path forced. Which library versions
this mirrors: coop.api.compat.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from functools import partial
from operator import attrgetter
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    NamedTypeNode,
    NonNullTypeNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    StringValueNode,
    VariableDefinitionNode,
    VariableNode,
    get_argument_values,
    get_variable_values,
    is_leaf_type,
    located_error,
)
from graphql.execution.values import VariableValues
from graphql.pyutils import inspect, is_iterable
from strawberry import Schema
from strawberry.permission import PermissionExtension
from strawberry.types.field import StrawberryField

from coop.api.compat import core_schema
from coop.api.context import ApiContext
from coop.api.disclosed import Disclosed, check_disclosure
from coop.api.permissions import RequireScope
from coop.api.types import read_change, read_explanation, read_stale
from coop.api.viewer import (
    read_access_log,
    read_connections,
    read_grants,
    read_history,
    read_score,
    read_scorer_settings,
    read_scores,
    read_sharing_paused,
    viewer_for,
)
from coop.consent.disclosure import Reveals
from coop.types import together

# (type, field) -> how the plan resolves it: the same functions the strawberry resolvers call.
PLANNED_SYNC: dict[tuple[str, str], Callable[[ApiContext], Any]] = {
    ("Query", "viewer"): viewer_for,
}
PLANNED_ASYNC: dict[tuple[str, str], tuple[str | None, Callable[..., Awaitable[Any]]]] = {
    # field -> (its one String! argument or None, the function: (ctx) or (ctx, argument))
    ("Viewer", "score"): ("scorer", read_score),
    ("Viewer", "scores"): (None, read_scores),
    # the self-service reads, behind their `needs_scope` permission (see `_scope_gate`)
    ("Viewer", "grants"): (None, read_grants),
    ("Viewer", "sharingPaused"): (None, read_sharing_paused),
    ("Viewer", "connections"): (None, read_connections),
    ("Viewer", "scorerSettings"): (None, read_scorer_settings),
}
# (type, field) -> the function of (ctx, the parent object) its resolver calls; the plan runs
# the field's disclosure gate (if any) first, as the field's extension does.
PLANNED_ON_SOURCE: dict[tuple[str, str], Callable[[ApiContext, Any], Awaitable[Any]]] = {
    ("Score", "explanation"): read_explanation,
    ("Score", "change"): read_change,
    ("Score", "stale"): read_stale,
}
# (type, field) -> given the field's node, the function its resolver calls, as
# (ctx, **arguments): every argument a String, Int or Boolean (no conversion: strawberry
# passes those as graphql-core coerces them), coerced by graphql-core's get_argument_values.
PLANNED_WITH_ARGUMENTS: dict[
    tuple[str, str], Callable[[FieldNode], Callable[..., Awaitable[Any]]]
] = {
    ("Viewer", "scoreHistory"): lambda node: partial(
        read_history, contributions=_selects(node, "contributions")
    ),
    ("Viewer", "accessLog"): lambda node: read_access_log,  # behind its scope permission
}
PLAIN_ARGUMENT_TYPES = frozenset({"String", "Int", "Boolean"})


# Where a value sits in the response: keys and list indexes (GraphQLError.path).
Path = list[str | int]
# The response keys of one object, and their JSON values.
Data = dict[str, Any]


# A document's coerced variables (graphql-core's, as its executor keeps them).
_NO_VARIABLES = VariableValues(sources={}, coerced={})


class _Null(Exception):
    """A non-null field had no value: its parent becomes null (and so on up)."""


@dataclass(frozen=True, slots=True)
class _Field:
    key: str  # the response key (alias or name)
    node: FieldNode  # for error locations
    nullable: bool
    typename: str | None = None  # `__typename`: the answer
    resolve: Callable[[Any], Any] | None = None  # a basic field: reads it from its parent
    serialize: Callable[[Any], Any] | None = None  # a leaf: its coerce_output_value
    sync: Callable[[ApiContext], Any] | None = None  # a planned resolver field
    call: Callable[..., Awaitable[Any]] | None = None  # a planned async field
    argument: str | None = None  # the planned async field's argument: a literal,
    variable: str | None = None  # or the variable that holds it (neither: none)
    fields: tuple[_Field, ...] = ()  # an object's selections
    parent: str = ""  # the parent type's name (error messages)
    gate: Reveals | None = None  # a disclosure-gated basic field: what it reveals
    items: bool = False  # a list: `serialize` or `fields` describe each item
    item_nullable: bool = True
    reads: bool = False  # it, or a field below it, calls a planned async function
    below: bool = False  # a field below it calls one
    late_null: bool = False  # it may null its parent after it has started reading
    scopes: tuple[RequireScope, ...] = ()  # the field's scope permission (`_scope_gate`)
    on_source: bool = False  # `call` takes (ctx, the parent object), after `gate`
    definition: GraphQLField | None = None  # `call` takes (ctx, **the coerced arguments),
    names: tuple[tuple[str, str], ...] = ()  # by their Python names: (GraphQL, Python)
    given: tuple[tuple[str, Any], ...] | None = None  # literal arguments, coerced once
    pure: Callable[[Any], Any] | None = None  # completes a value below which nothing reads


class Plan:
    """A compiled document (see the module docstring)."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fields: tuple[_Field, ...],
        variables: tuple[VariableDefinitionNode, ...],
    ) -> None:
        self.schema = schema
        self.fields = fields
        self.variables = variables

    async def run(
        self,
        context: ApiContext,
        variables: dict[str, Any] | None,
        *,
        hide_suggestions: bool,
    ) -> tuple[Any, list[GraphQLError]]:
        """(data, errors) as graphql-core's `execute` would give them."""
        values = _NO_VARIABLES
        if self.variables:
            coerced = get_variable_values(
                self.schema,
                self.variables,
                variables or {},
                max_errors=50,  # graphql-core's default for execute
                hide_suggestions=hide_suggestions,
            )
            if isinstance(coerced, list):
                return None, coerced
            values = coerced
        errors: list[GraphQLError] = []
        try:
            data = await _object(self.fields, None, context, [], errors, values)
        except _Null:
            data = None
        return data, errors


async def _object(
    fields: tuple[_Field, ...],
    source: Any,
    ctx: ApiContext,
    path: Path,
    errors: list[GraphQLError],
    values: VariableValues,
) -> Data:
    result, pending = _fill(fields, source, ctx, path, errors, values)
    if pending:
        settled = await together([awaitable for _, awaitable in pending])
        for (field, _), value in zip(pending, settled, strict=True):
            result[field.key] = value
    return result


def _object_now(
    fields: tuple[_Field, ...],
    source: Any,
    ctx: ApiContext,
    path: Path,
    errors: list[GraphQLError],
    values: VariableValues,
) -> Data:
    """An object none of whose fields read: completed at once, without a coroutine."""
    result, pending = _fill(fields, source, ctx, path, errors, values)
    assert not pending
    return result


def _fill(
    fields: tuple[_Field, ...],
    source: Any,
    ctx: ApiContext,
    path: Path,
    errors: list[GraphQLError],
    values: VariableValues,
) -> tuple[Data, list[tuple[_Field, Coroutine[Any, Any, Any]]]]:
    """An object's fields in order: the values of those that read nothing, and the reads
    not yet awaited (their keys hold None until they settle)."""
    result: Data = {}
    pending: list[tuple[_Field, Coroutine[Any, Any, Any]]] = []
    for field in fields:
        if field.typename is not None:
            result[field.key] = field.typename
        elif field.call is not None:
            result[field.key] = None  # keeps the selection order; filled below
            at = [*path, field.key]
            pending.append((field, _async_field(field, ctx, source, at, errors, values)))
        else:
            try:
                if field.sync is not None:
                    value = field.sync(ctx)
                elif field.gate is not None and not check_disclosure(ctx, source, field.gate):
                    value = None
                else:
                    assert field.resolve is not None
                    value = field.resolve(source)
                if value is None:
                    at = [*path, field.key]
                    result[field.key] = _none(field, at, errors, nullable=field.nullable)
                elif field.reads:  # its fields read: it runs beside its siblings
                    result[field.key] = None
                    sub = _complete(field, value, ctx, [*path, field.key], errors, values)
                    pending.append((field, sub))
                else:  # a leaf, list or object that reads nothing: completed in order
                    at = [*path, field.key]
                    result[field.key] = _complete_now(field, value, ctx, at, errors, values)
            except _Null:
                # The parent is null: like graphql-core, never start the reads not begun.
                for _, started in pending:
                    started.close()
                raise
            except Exception as exc:
                at = [*path, field.key]
                result[field.key] = _failed(field, exc, at, errors, nullable=field.nullable)
    return result, pending


def _none(field: _Field, path: Path, errors: list[GraphQLError], *, nullable: bool) -> Any:
    if nullable:
        return None
    name = f"{field.parent}.{field.node.name.value}"
    error = TypeError(f"Cannot return null for non-nullable field {name}.")
    return _failed(field, error, path, errors, nullable=nullable)


def _leaf(
    field: _Field, value: Any, path: Path, errors: list[GraphQLError], *, nullable: bool
) -> Any:
    assert field.serialize is not None
    try:
        serialized = field.serialize(value)
    except Exception as exc:
        return _failed(field, exc, path, errors, nullable=nullable)
    if serialized is None:
        error = TypeError(f"A scalar serialized {inspect(value)} to null.")
        return _failed(field, error, path, errors, nullable=nullable)
    return serialized


async def _async_field(
    field: _Field,
    ctx: ApiContext,
    source: Any,
    path: Path,
    errors: list[GraphQLError],
    values: VariableValues,
) -> Any:
    assert field.call is not None
    argument = field.argument if field.variable is None else values.coerced[field.variable]
    try:
        if field.on_source:
            gated = field.gate is not None and not check_disclosure(ctx, source, field.gate)
            value = None if gated else await field.call(ctx, source)
        elif field.given is not None:  # literal arguments: coerced when compiled
            _check_scopes(field, ctx)
            value = await field.call(ctx, **dict(field.given))
        elif field.definition is not None:
            given = get_argument_values(field.definition, field.node, values)
            names = dict(field.names)
            _check_scopes(field, ctx)  # after the arguments, as in graphql-core and strawberry
            value = await field.call(ctx, **{names[k]: v for k, v in given.items()})
        else:
            _check_scopes(field, ctx)
            value = await (field.call(ctx) if argument is None else field.call(ctx, argument))
    except Exception as exc:
        return _failed(field, exc, path, errors, nullable=field.nullable)
    return await _complete(field, value, ctx, path, errors, values)


def _check_scopes(field: _Field, ctx: ApiContext) -> None:
    """The field's scope permission, as strawberry's PermissionExtension checks it: the
    permission's own decision, then its own refusal (it raises)."""
    for permission in field.scopes:
        if not permission.allows(ctx):
            permission.on_unauthorized()


async def _complete(
    field: _Field,
    value: Any,
    ctx: ApiContext,
    path: Path,
    errors: list[GraphQLError],
    values: VariableValues,
) -> Any:
    """The value of a field that reads, or whose object has fields that read."""
    if value is None or field.items or not field.below:
        return _complete_now(field, value, ctx, path, errors, values)
    try:
        return await _object(field.fields, value, ctx, path, errors, values)
    except _Null:
        if field.nullable:
            return None
        raise


def _complete_now(
    field: _Field,
    value: Any,
    ctx: ApiContext,
    path: Path,
    errors: list[GraphQLError],
    values: VariableValues,
) -> Any:
    """The value of a field below which nothing reads: completed without a coroutine."""
    if value is None:
        return _none(field, path, errors, nullable=field.nullable)
    if field.pure is not None:
        try:
            return field.pure(value)
        except Exception:  # noqa: S110  # a null, an error or a refusal below: see `_pure`
            pass
    if field.items:
        return _list(field, value, ctx, path, errors, values)
    return _value(field, value, ctx, path, errors, values, nullable=field.nullable)


def _list(
    field: _Field,
    value: Any,
    ctx: ApiContext,
    path: Path,
    errors: list[GraphQLError],
    values: VariableValues,
) -> Any:
    """Each item in order (they read nothing more), as graphql-core completes a list: the
    first item that may not be null and is nulls the list."""
    if not is_iterable(value):
        name = f"{field.parent}.{field.node.name.value}"
        error = GraphQLError(f"Expected Iterable, but did not find one for field '{name}'.")
        return _failed(field, error, path, errors, nullable=field.nullable)
    completed = []
    try:
        for index, item in enumerate(value):
            at = [*path, index]
            if item is None:
                completed.append(_none(field, at, errors, nullable=field.item_nullable))
            else:
                completed.append(
                    _value(field, item, ctx, at, errors, values, nullable=field.item_nullable)
                )
    except _Null:
        if field.nullable:
            return None
        raise
    return completed


def _value(
    field: _Field,
    value: Any,
    ctx: ApiContext,
    path: Path,
    errors: list[GraphQLError],
    values: VariableValues,
    *,
    nullable: bool,
) -> Any:
    """A value that is not None and reads nothing: a leaf serialized, an object's
    selections completed."""
    if field.serialize is not None:
        return _leaf(field, value, path, errors, nullable=nullable)
    try:
        return _object_now(field.fields, value, ctx, path, errors, values)
    except _Null:
        if nullable:
            return None
        raise


def _failed(
    field: _Field, exc: Exception, path: Path, errors: list[GraphQLError], *, nullable: bool
) -> Any:
    """Record the error; the value is null, or its parent is when it may not be."""
    errors.append(located_error(exc, [field.node], path))
    if not nullable:
        raise _Null
    return None


# -- compiling ----------------------------------------------------------------------------------


def compile_plan(schema: Schema, document: DocumentNode) -> Plan | None:
    """The plan for a validated `document`, or None when it is outside the planned shape."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != len(document.definitions) or len(operations) != 1:
        return None  # fragments, or several operations
    operation = operations[0]
    if operation.operation is not OperationType.QUERY or operation.directives:
        return None
    variables = tuple(operation.variable_definitions or ())
    if not all(_is_string_variable(v) for v in variables):
        return None
    core = core_schema(schema)
    root = core.query_type
    assert root is not None
    fields = _selections(schema, core, root, operation.selection_set)
    return Plan(core, fields, variables) if fields is not None else None


def _is_string_variable(definition: VariableDefinitionNode) -> bool:
    kind = definition.type
    return (
        not definition.directives
        and isinstance(kind, NonNullTypeNode)
        and isinstance(kind.type, NamedTypeNode)
        and kind.type.name.value == "String"
    )


def _selections(
    schema: Schema, core: GraphQLSchema, parent: GraphQLObjectType, selection_set: SelectionSetNode
) -> tuple[_Field, ...] | None:
    fields: list[_Field] = []
    keys: set[str] = set()
    for selection in selection_set.selections:
        if not isinstance(selection, FieldNode) or selection.directives:
            return None
        key = selection.alias.value if selection.alias else selection.name.value
        if key in keys:
            return None  # graphql-core would merge them: leave it to graphql-core
        keys.add(key)
        field = _field_plan(schema, core, parent, selection, key)
        if field is None:
            return None
        fields.append(field)
    reading = [f for f in fields if f.reads]
    if len(reading) > 1 and any(f.late_null for f in reading):
        # A non-null field failing while a sibling still runs: graphql-core nulls the parent
        # and drops the sibling's later errors. Not mirrored: leave it to graphql-core.
        return None
    return tuple(fields)


def _field_plan(
    schema: Schema,
    core: GraphQLSchema,
    parent: GraphQLObjectType,
    node: FieldNode,
    key: str,
) -> _Field | None:
    name = node.name.value
    if name == "__typename":
        return _Field(key=key, node=node, nullable=False, typename=parent.name)
    definition: GraphQLField | None = parent.fields.get(name)
    strawberry_field = schema.get_field_for_type(name, parent.name)
    if definition is None or strawberry_field is None or strawberry_field.permission_classes:
        return None
    common = _how_resolved(strawberry_field, parent.name, node)
    if common is None:
        common = _with_arguments(schema, strawberry_field, definition, parent.name, node)
    if common is None:
        return None
    output, nullable = _unwrap(definition.type)
    common.update(key=key, node=node, nullable=nullable, parent=parent.name)
    if isinstance(output, GraphQLList):
        item, item_nullable = _unwrap(output.of_type)
        if isinstance(item, GraphQLList):
            return None  # lists of lists
        common.update(items=True, item_nullable=item_nullable)
        output = item
    if is_leaf_type(output):
        if node.selection_set is not None:
            return None
        calls = common.get("call") is not None
        leaf = _Field(
            serialize=output.coerce_output_value,
            reads=calls,
            late_null=calls and not nullable,
            **common,
        )
        return replace(leaf, pure=_pure(leaf))
    if not isinstance(output, GraphQLObjectType) or node.selection_set is None:
        return None  # interfaces, unions
    inner = _selections(schema, core, output, node.selection_set)
    if inner is None:
        return None
    calls = common.get("call") is not None
    if common.get("items") and any(f.reads for f in inner):
        return None  # items that read: graphql-core completes them concurrently
    late = not nullable and (calls or any(f.late_null for f in inner))
    below = any(f.reads for f in inner)
    planned = _Field(fields=inner, reads=calls or below, below=below, late_null=late, **common)
    return replace(planned, pure=None if below else _pure(planned))


def _unwrap(kind: Any) -> tuple[Any, bool]:
    """(the type inside a non-null wrapper, whether it may be null)."""
    if isinstance(kind, GraphQLNonNull):
        return kind.of_type, False
    return kind, True


def _how_resolved(field: StrawberryField, parent: str, node: FieldNode) -> dict[str, Any] | None:
    """How the plan resolves `field`: a planned function, a gated or plain basic field; None
    when it cannot (arguments it does not take, any other extension or resolver)."""
    scopes = _scope_gate(field.extensions)
    if scopes is not None:
        # A planned async field without arguments behind its scope permission, which the
        # plan checks as strawberry does (`_check_scopes`); with arguments: `_with_arguments`.
        planned = PLANNED_ASYNC.get((parent, node.name.value))
        if planned is None or planned[0] is not None or node.arguments:
            return None
        return {"call": planned[1], "scopes": scopes}
    gate = _disclosure_gate(field.extensions)
    on_source = PLANNED_ON_SOURCE.get((parent, node.name.value))
    if field.extensions and (gate is None or (field.base_resolver and on_source is None)):
        return None  # a plan must never step around a field's permission check
    planned_sync = PLANNED_SYNC.get((parent, node.name.value))
    planned_async = PLANNED_ASYNC.get((parent, node.name.value))
    arguments = node.arguments or ()
    if on_source is not None:
        return None if arguments else {"call": on_source, "on_source": True, "gate": gate}
    if planned_sync is not None:
        return None if arguments else {"sync": planned_sync}
    if planned_async is not None:
        argument_name, call = planned_async
        if argument_name is None:
            return None if arguments else {"call": call}
        if len(arguments) != 1 or arguments[0].name.value != argument_name:
            return None
        value = arguments[0].value
        if isinstance(value, StringValueNode):
            return {"call": call, "argument": value.value}
        if isinstance(value, VariableNode):
            return {"call": call, "variable": value.name.value}
        return None
    if arguments or field.base_resolver is not None:
        return None
    if gate is not None:
        return {"gate": gate, "resolve": _basic_result(field)}
    return {"resolve": _basic_result(field)} if field.is_basic_field else None


def _with_arguments(
    schema: Schema,
    field: StrawberryField,
    definition: GraphQLField,
    parent: str,
    node: FieldNode,
) -> dict[str, Any] | None:
    """A PLANNED_WITH_ARGUMENTS field without extensions whose arguments are all plain
    scalars, with its call and the Python names of its arguments; None otherwise."""
    factory = PLANNED_WITH_ARGUMENTS.get((parent, node.name.value))
    scopes = _scope_gate(field.extensions)
    if factory is None or (field.extensions and scopes is None) or field.base_resolver is None:
        return None
    for argument in definition.args.values():
        kind, _ = _unwrap(argument.type)
        if not isinstance(kind, GraphQLScalarType) or kind.name not in PLAIN_ARGUMENT_TYPES:
            return None
    convert = schema.config.name_converter
    names = tuple((convert.from_argument(a), a.python_name) for a in field.arguments)
    if {graphql for graphql, _ in names} != set(definition.args):
        return None
    planned = {"call": factory(node), "definition": definition, "names": names}
    return {**planned, "scopes": scopes or (), "given": _literal_arguments(definition, node, names)}


def _literal_arguments(
    definition: GraphQLField, node: FieldNode, names: tuple[tuple[str, str], ...]
) -> tuple[tuple[str, Any], ...] | None:
    """A field's arguments by their Python names when none comes from a variable: coerced
    once, by graphql-core's `get_argument_values`, as it would coerce them on every run (the
    same literals give the same values). None: coerced per run (variables, or a failure,
    which the run then reports as graphql-core does)."""
    if any(isinstance(argument.value, VariableNode) for argument in node.arguments or ()):
        return None
    try:
        given = get_argument_values(definition, node, _NO_VARIABLES)
    except Exception:
        return None
    python = dict(names)
    return tuple((python[name], value) for name, value in given.items())


class _Slow(Exception):
    """`_pure` met a null, an error or a refusal: complete the value the general way."""


def _pure(field: _Field) -> Callable[[Any], Any] | None:
    """A function completing a non-null value of `field` (below which nothing reads) in one
    call, for the common case where nothing below is null where it may not be, fails or is
    refused; it raises otherwise, and the plan completes the value again through
    `_complete_now`'s general path, which records the errors as graphql-core does. Reading a
    basic field and serializing a leaf have no side effects, so doing them twice changes
    nothing. None when a field below is gated, resolved otherwise, or a list of lists."""
    if field.items:
        if field.serialize is not None:  # a list of leaves: serialized without a call each
            return partial(_pure_leaves, field.serialize, field.item_nullable)
        item = _pure_item(field)
        if item is None:
            return None
        return partial(_pure_list, item, field.item_nullable)
    return _pure_item(field)


def _pure_item(field: _Field) -> Callable[[Any], Any] | None:
    if field.serialize is not None:
        return partial(_pure_leaf, field.serialize)
    entries: list[tuple[str, Callable[[Any], Any] | None, Any, bool, bool]] = []
    for sub in field.fields:
        if sub.typename is not None:
            entries.append((sub.key, None, sub.typename, False, False))
            continue
        if sub.resolve is None or sub.gate is not None or sub.pure is None or sub.reads:
            return None
        if sub.serialize is not None and not sub.items:  # a leaf: its serializer, inline
            entries.append((sub.key, sub.resolve, sub.serialize, sub.nullable, True))
        else:
            entries.append((sub.key, sub.resolve, sub.pure, sub.nullable, False))
    return partial(_pure_object, tuple(entries))


def _pure_leaf(serialize: Callable[[Any], Any], value: Any) -> Any:
    serialized = serialize(value)
    if serialized is None:
        raise _Slow
    return serialized


def _pure_leaves(serialize: Callable[[Any], Any], item_nullable: bool, value: Any) -> Any:
    """`_pure_list` of `_pure_leaf` items, without the call per item."""
    if type(value) is not list and type(value) is not tuple:
        raise _Slow
    completed = []
    for each in value:
        if each is not None:
            serialized = serialize(each)
            if serialized is None:
                raise _Slow
            completed.append(serialized)
        elif item_nullable:
            completed.append(None)
        else:
            raise _Slow
    return completed


def _pure_list(item: Callable[[Any], Any], item_nullable: bool, value: Any) -> Any:
    if type(value) is not list and type(value) is not tuple:
        raise _Slow  # other iterables: once only, so the general path must read them
    completed = []
    for each in value:
        if each is not None:
            completed.append(item(each))
        elif item_nullable:
            completed.append(None)
        else:
            raise _Slow
    return completed


def _pure_object(
    entries: tuple[tuple[str, Callable[[Any], Any] | None, Any, bool, bool], ...], source: Any
) -> Data:
    result: Data = {}
    for key, read, complete, nullable, leaf in entries:
        if read is None:  # __typename
            result[key] = complete
            continue
        value = read(source)
        if value is not None:
            done = complete(value)
            if leaf and done is None:  # as `_pure_leaf`: a serializer's null
                raise _Slow
            result[key] = done
        elif nullable:
            result[key] = None
        else:
            raise _Slow
    return result


def _selects(node: FieldNode, name: str) -> bool:
    """Whether a field called `name` is selected anywhere below `node` (a planned document
    has no fragments)."""
    selections = node.selection_set.selections if node.selection_set else ()
    return any(
        isinstance(s, FieldNode) and (s.name.value == name or _selects(s, name)) for s in selections
    )


def _scope_gate(extensions: Any) -> tuple[RequireScope, ...] | None:
    """The scope permissions of a field guarded by `needs_scope` alone (strawberry's
    PermissionExtension with coop's RequireScope only, refusing with an error); None for
    any other extensions."""
    if len(extensions) != 1 or not isinstance(extensions[0], PermissionExtension):
        return None
    extension = extensions[0]
    permissions = tuple(extension.permissions)
    if extension.fail_silently or not permissions:
        return None
    if not all(type(p) is RequireScope for p in permissions):
        return None
    return permissions  # type: ignore[return-value]  # (checked just above)


def _disclosure_gate(extensions: Any) -> Reveals | None:
    """What a field gated by `Disclosed` alone reveals; None for any other extensions."""
    if len(extensions) == 1 and isinstance(extensions[0], Disclosed):
        return extensions[0].reveals
    return None


def _basic_result(field: StrawberryField) -> Callable[[Any], Any]:
    """Read a basic (resolver-less) field as strawberry does (`get_result`, which its own
    resolver for a basic field calls), without extensions (the plan has just run the one it
    may have, the disclosure gate)."""
    if field.base_resolver is None and field.default_resolver is getattr:
        return attrgetter(field.python_name)  # what `get_result` then does

    def resolve(source: Any) -> Any:
        return field.get_result(source, info=None, args=[], kwargs={})

    return resolve
