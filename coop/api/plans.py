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
- `Query.viewer` and `Viewer.score(scorer: "<literal>" or $variable)`, the resolver fields in
  PLANNED_SYNC and PLANNED_ASYNC:
  the plan calls the very functions their resolvers call (`viewer_for`, `read_score`), so the
  consent check and the access-log entry are the same;
- any strawberry basic field (no resolver, no arguments) of a leaf or object type, read with
  the same resolve function graphql-core would call and serialized with the same scalar;
  `__typename`. Lists, interfaces and unions are not planned;
- no field with a field extension or permission class, planned or not: a plan never steps
  around a permission check (a test holds this); planned async fields must be nullable. The
  one extension planned is the disclosure gate (`coop.api.disclosed`) on a basic field: the
  plan calls the same `check_disclosure` before reading the field, so a field above the
  grant's level is refused exactly as graphql-core refuses it.

Errors are located (`graphql.located_error`) and null is propagated to the nearest nullable
field exactly as the GraphQL specification (and graphql-core) does; sibling resolver fields
run concurrently, as in graphql-core, so their access-log entries share one commit.
tests/api/test_plans.py runs documents through both paths and compares every answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLField,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    NamedTypeNode,
    NonNullTypeNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    StringValueNode,
    VariableDefinitionNode,
    VariableNode,
    is_leaf_type,
    located_error,
)
from graphql.execution.values import get_variable_values
from strawberry import Schema

from coop.api.context import ApiContext
from coop.api.disclosed import Disclosed, check_disclosure
from coop.api.viewer import read_score, viewer_for
from coop.consent.disclosure import Reveals
from coop.types import together

# (type, field) -> how the plan resolves it: the same functions the strawberry resolvers call.
PLANNED_SYNC: dict[tuple[str, str], Callable[[ApiContext], Any]] = {
    ("Query", "viewer"): viewer_for,
}
PLANNED_ASYNC: dict[tuple[str, str], tuple[str, Callable[[ApiContext, str], Awaitable[Any]]]] = {
    # field -> (its one String! argument, the function)
    ("Viewer", "score"): ("scorer", read_score),
}


class _Null(Exception):
    """A non-null field had no value: its parent becomes null (and so on up)."""


@dataclass(frozen=True, slots=True)
class _Field:
    key: str  # the response key (alias or name)
    node: FieldNode  # for error locations
    nullable: bool
    typename: str | None = None  # `__typename`: the answer
    resolve: Callable[..., Any] | None = None  # a basic field: graphql-core's resolve function
    serialize: Callable[[Any], Any] | None = None  # a leaf: its scalar's serialize
    sync: Callable[[ApiContext], Any] | None = None  # a planned resolver field
    call: Callable[[ApiContext, str], Awaitable[Any]] | None = None  # a planned async field
    argument: str = ""  # the planned async field's argument: a literal,
    variable: str | None = None  # or the variable that holds it
    fields: tuple[_Field, ...] = ()  # an object's selections
    parent: str = ""  # the parent type's name (error messages)
    gate: Reveals | None = None  # a disclosure-gated basic field: what it reveals


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
        values: dict[str, Any] = {}
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
            values = coerced.coerced
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
    path: list[Any],
    errors: list[Any],
    values: dict[str, Any],
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    pending: list[tuple[_Field, Awaitable[Any]]] = []
    for field in fields:
        if field.typename is not None:
            result[field.key] = field.typename
        elif field.call is not None:
            result[field.key] = None  # keeps the selection order; filled below
            pending.append((field, _async_field(field, ctx, [*path, field.key], errors, values)))
        else:
            try:
                if field.sync is not None:
                    value = field.sync(ctx)
                elif field.gate is not None and not check_disclosure(ctx, source, field.gate):
                    value = None
                else:
                    assert field.resolve is not None
                    value = field.resolve(source, None)
            except Exception as exc:
                result[field.key] = _failed(field, exc, [*path, field.key], errors)
                continue
            if value is None:
                result[field.key] = _none(field, [*path, field.key], errors)
            elif field.serialize is not None:
                result[field.key] = _leaf(field, value, [*path, field.key], errors)
            else:  # an object: its own fields may read, so it runs beside its siblings
                result[field.key] = None
                sub = _complete(field, value, ctx, [*path, field.key], errors, values)
                pending.append((field, sub))
    if pending:
        settled = await together([awaitable for _, awaitable in pending])
        for (field, _), value in zip(pending, settled, strict=True):
            result[field.key] = value
    return result


def _none(field: _Field, path: list[Any], errors: list[Any]) -> Any:
    if field.nullable:
        return None
    name = f"{field.parent}.{field.node.name.value}"
    return _failed(
        field, TypeError(f"Cannot return null for non-nullable field {name}."), path, errors
    )


def _leaf(field: _Field, value: Any, path: list[Any], errors: list[Any]) -> Any:
    assert field.serialize is not None
    try:
        serialized = field.serialize(value)
    except Exception as exc:
        return _failed(field, exc, path, errors)
    if serialized is None:
        return _failed(field, TypeError("A scalar serialized to null."), path, errors)
    return serialized


async def _async_field(
    field: _Field, ctx: ApiContext, path: list[Any], errors: list[Any], values: dict[str, Any]
) -> Any:
    assert field.call is not None
    argument = field.argument if field.variable is None else values[field.variable]
    try:
        value = await field.call(ctx, argument)
    except Exception as exc:
        return _failed(field, exc, path, errors)
    return await _complete(field, value, ctx, path, errors, values)


async def _complete(
    field: _Field,
    value: Any,
    ctx: ApiContext,
    path: list[Any],
    errors: list[Any],
    values: dict[str, Any],
) -> Any:
    if value is None:
        return _none(field, path, errors)
    if field.serialize is not None:
        return _leaf(field, value, path, errors)
    try:
        return await _object(field.fields, value, ctx, path, errors, values)
    except _Null:
        if field.nullable:
            return None
        raise


def _failed(field: _Field, exc: Exception, path: list[Any], errors: list[Any]) -> Any:
    """Record the error; the field is null, or its parent is when it may not be."""
    errors.append(located_error(exc, [field.node], path))
    if not field.nullable:
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
    core = schema._schema
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
    if definition is None:
        return None
    nullable = not isinstance(definition.type, GraphQLNonNull)
    output = (
        definition.type.of_type if isinstance(definition.type, GraphQLNonNull) else definition.type
    )
    common: dict[str, Any] = {"key": key, "node": node, "nullable": nullable, "parent": parent.name}
    strawberry_field = schema.get_field_for_type(name, parent.name)
    if strawberry_field is None or strawberry_field.permission_classes:
        return None
    gate = _disclosure_gate(strawberry_field.extensions)
    if strawberry_field.extensions and (gate is None or strawberry_field.base_resolver):
        return None  # a plan must never step around a field's permission check
    planned_sync = PLANNED_SYNC.get((parent.name, name))
    planned_async = PLANNED_ASYNC.get((parent.name, name))
    if planned_sync is not None and not node.arguments:
        common["sync"] = planned_sync
    elif planned_async is not None:
        if not nullable:
            return None  # its failure would null siblings still running: leave it to graphql-core
        argument_name, call = planned_async
        arguments = node.arguments or ()
        if len(arguments) != 1:
            return None
        (argument,) = arguments
        if argument.name.value != argument_name:
            return None
        if isinstance(argument.value, StringValueNode):
            common.update(call=call, argument=argument.value.value)
        elif isinstance(argument.value, VariableNode):
            common.update(call=call, variable=argument.value.name.value)
        else:
            return None
    elif gate is not None:
        if node.arguments:
            return None
        common.update(gate=gate, resolve=_basic_result(strawberry_field))
    else:
        if (
            not strawberry_field.is_basic_field
            or node.arguments
            or not getattr(definition.resolve, "_is_default", False)
        ):
            return None
        common["resolve"] = definition.resolve
    if is_leaf_type(output):
        if node.selection_set is not None:
            return None
        return _Field(serialize=output.serialize, **common)
    if not isinstance(output, GraphQLObjectType) or node.selection_set is None:
        return None  # lists, interfaces, unions
    inner = _selections(schema, core, output, node.selection_set)
    if inner is None:
        return None
    return _Field(fields=inner, **common)


def _disclosure_gate(extensions: list[Any]) -> Reveals | None:
    """What a field gated by `Disclosed` alone reveals; None for any other extensions."""
    if len(extensions) == 1 and isinstance(extensions[0], Disclosed):
        return extensions[0].reveals
    return None


def _basic_result(field: Any) -> Callable[[Any, Any], Any]:
    """Read a basic (resolver-less) field as strawberry does, without its extensions (the
    plan has just run the one it has, the disclosure gate)."""

    def resolve(source: Any, _info: Any) -> Any:
        return field.get_result(source, info=None, args=[], kwargs={})

    return resolve
