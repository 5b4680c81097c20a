"""Running one GraphQL operation: limits, caches, execution and error shaping, in order.

strawberry builds the schema (types, resolvers, field permissions, argument conversion) and
graphql-core runs it; this module is the pipeline between the transport (`coop.api.view`) and
graphql-core, in place of strawberry's `Schema.execute` and its extension hooks. Every
/graphql request goes through `Operations.run`:

1. parse with a token limit (MAX_TOKENS: parsing stops there, which also bounds nested
   introspection, GQ-08), then validate with graphql-core's rules, strawberry's two extra
   rules and coop's depth and alias limits (coop.api.limits: the messages of strawberry's
   QueryDepthLimiter and MaxAliasesLimiter, computed in linear time, which strawberry's are
   not). The linear limits run first, alone; the other rules then run under a work budget
   proportional to the document (coop.api.budget). New texts are checked in a worker thread;
   both steps are done once per distinct document text (a bounded LRU);
2. pick the operation (an unknown or missing operation name is a 400, as in strawberry);
3. check the page bounds and the node ceiling (GQ-10), cached per text when there are no
   variables;
4. execute with graphql-core, with strawberry's execution context class;
5. log and shape the errors: expected ones keep their message and get a stable
   `extensions.code`, anything else becomes "Unexpected error." with the request id.

Why not strawberry's `Schema.execute` and HTTP view: on the hot read they cost more than the
consent check, the database read and the access-log write together (per request: an
ExecutionContext, an extension runner with async context managers for each phase, the
request adapters), see docs/benchmarks.md. The behaviour is the same and the API tests hold it.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from inspect import isawaitable
from typing import Any

import anyio
import anyio.to_thread
from graphql import (
    DocumentNode,
    GraphQLError,
    OperationDefinitionNode,
    execute,
    parse,
    specified_rules,
    validate,
)
from graphql.validation import ASTValidationRule
from strawberry import Schema

from coop.api.budget import validate_within_budget
from coop.api.compat import STRAWBERRY_RULES, core_schema, is_awaitable
from coop.api.errors import UNEXPECTED_MESSAGE, Code, code_for_coop_error
from coop.api.limits import (
    MAX_TOKENS,
    AliasLimit,
    DepthLimit,
    LimitExceeded,
    SelectionBreadth,
    check_amounts,
)
from coop.api.plans import Plan, compile_plan
from coop.db import is_unavailable
from coop.errors import CoopError, DatabaseUnavailableError

log = logging.getLogger("coop.api")

CACHE_SIZE = 256  # distinct document texts kept; unique texts must not grow memory unbounded
# Linear, checked first: a document they refuse is never handed to the other rules.
LIMIT_RULES: tuple[type[ASTValidationRule], ...] = (SelectionBreadth, DepthLimit, AliasLimit)
RULES: tuple[type[ASTValidationRule], ...] = (*specified_rules, *STRAWBERRY_RULES)


class RequestError(Exception):
    """The request cannot run as an operation at all (HTTP 400, `BAD_REQUEST`)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class Prepared:
    """A document text parsed and validated once, shared by every request that sends it."""

    document: DocumentNode | None
    errors: list[GraphQLError]
    operations: dict[str | None, OperationDefinitionNode] = field(default_factory=dict)
    plan: Plan | None = None  # the compiled plan, for documents of the planned shape
    # The amount check's answer per operation name, for requests without variables.
    amounts: dict[str | None, LimitExceeded | None] = field(default_factory=dict)


def classify(error: GraphQLError) -> tuple[str, bool]:
    """Return (code, expected). Unexpected errors are masked and logged at ERROR."""
    existing = (error.extensions or {}).get("code")
    if isinstance(existing, str):
        return existing, existing != Code.INTERNAL
    original = error.original_error
    if isinstance(original, CoopError):
        code = code_for_coop_error(original)
        return code.value, code != Code.INTERNAL
    if isinstance(original, GraphQLError) and original is not error:
        return classify(original)
    if original is not None:
        return Code.INTERNAL.value, False
    message = error.message
    if message.startswith("Syntax Error"):
        return Code.GRAPHQL_PARSE_FAILED.value, True
    if message.startswith("Variable '$"):
        return Code.BAD_USER_INPUT.value, True
    if error.path is None:
        return Code.GRAPHQL_VALIDATION_FAILED.value, True
    return Code.INTERNAL.value, False


def shape_errors(errors: list[GraphQLError], request_id: str) -> list[dict[str, Any]]:
    """Log each error, then return them as the client sees them (the formatted JSON form).

    Client mistakes are logged at DEBUG, unexpected errors at ERROR with the exception and the
    request id, never the query or its variables. Expected errors keep their message (a
    CoopError's own message) and get `extensions.code`; unexpected ones become
    "Unexpected error." with only the code and the request id.
    """
    shaped: list[dict[str, Any]] = []
    for error in errors:
        code, expected = classify(error)
        original = error.original_error
        if expected:
            log.debug("graphql client error", extra={"code": code, "request_id": request_id})
            message = original.message if isinstance(original, CoopError) else error.message
            extensions: dict[str, Any] = {**(error.extensions or {}), "code": code}
        else:
            log.error(
                "graphql unexpected error %s",
                type(original).__name__ if original else "GraphQLError",
                exc_info=original,
                extra={"request_id": request_id},
            )
            message = UNEXPECTED_MESSAGE
            extensions = {"code": Code.INTERNAL.value, "request_id": request_id}
        formatted: dict[str, Any] = {"message": message}
        if error.locations is not None:
            formatted["locations"] = [location.formatted for location in error.locations]
        if error.path is not None:
            formatted["path"] = error.path
        formatted["extensions"] = extensions
        shaped.append(formatted)
    return shaped


def _body(data: Any, errors: list[GraphQLError] | None, request_id: str) -> dict[str, Any]:
    """The response body: `data`, and the shaped `errors` when there are any. A database
    fault under any field fails the whole request (the transport answers 503): a partial
    answer would look like missing data."""
    for error in errors or ():
        if is_unavailable(error.original_error):
            raise DatabaseUnavailableError() from error.original_error
    body: dict[str, Any] = {"data": data}
    if errors:
        body["errors"] = shape_errors(errors, request_id)
    return body


class Operations:
    """Runs operations on one schema (see the module docstring for the steps)."""

    def __init__(
        self, schema: Schema, *, hide_suggestions: bool = True, plans: bool = True
    ) -> None:
        self.strawberry_schema = schema
        self.plans = plans
        self.schema = core_schema(schema)
        self.executor_class = schema.execution_context_class
        self.hide_suggestions = hide_suggestions
        self._prepared: OrderedDict[str, Prepared] = OrderedDict()
        self._limiter: anyio.CapacityLimiter | None = None  # made on first use, on the loop

    def prepare(self, text: str) -> Prepared:
        """The parsed and validated document for `text` (cached, least recently used out)."""
        prepared = self._cached(text)
        return prepared if prepared is not None else self._store(text, self._prepare_new(text))

    async def prepare_off_loop(self, text: str) -> Prepared:
        """`prepare`, with a new text parsed and validated in a worker thread, one at a time:
        the event loop keeps serving while a large document is checked (see
        docs/security.md for the bound), and a flood of new texts queues here."""
        prepared = self._cached(text)
        if prepared is not None:
            return prepared
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(1)
        fresh = await anyio.to_thread.run_sync(self._prepare_new, text, limiter=self._limiter)
        return self._store(text, fresh)

    def _cached(self, text: str) -> Prepared | None:
        prepared = self._prepared.get(text)
        if prepared is not None:
            self._prepared.move_to_end(text)
        return prepared

    def _store(self, text: str, prepared: Prepared) -> Prepared:
        self._prepared[text] = prepared
        if len(self._prepared) > CACHE_SIZE:
            self._prepared.popitem(last=False)
        return prepared

    def _prepare_new(self, text: str) -> Prepared:
        try:
            document = parse(text, max_tokens=MAX_TOKENS)
        except GraphQLError as error:
            return Prepared(document=None, errors=[error])
        errors = validate(self.schema, document, LIMIT_RULES)
        if not errors:
            errors = validate_within_budget(
                self.schema, document, RULES, hide_suggestions=self.hide_suggestions
            )
        operations = {
            (d.name.value if d.name else None): d
            for d in document.definitions
            if isinstance(d, OperationDefinitionNode)
        }
        planned = self.plans and not errors
        return Prepared(
            document=document,
            errors=errors,
            operations=operations,
            plan=compile_plan(self.strawberry_schema, document) if planned else None,
        )

    async def run(
        self,
        query: str,
        *,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        context: Any,
        request_id: str,
    ) -> dict[str, Any]:
        """The response body (`data`, and `errors` when there are any) for one operation.
        Raises RequestError when the document names no operation to run."""
        prepared = await self.prepare_off_loop(query)
        if prepared.errors:
            return _body(None, prepared.errors, request_id)
        assert prepared.document is not None
        self._operation(prepared, operation_name)
        refused = self._amounts(prepared, operation_name, variables)
        if refused is not None:
            error = GraphQLError(refused.message, extensions={"code": refused.code})
            return _body(None, [error], request_id)
        if prepared.plan is not None:
            data, errors = await prepared.plan.run(
                context, variables, hide_suggestions=self.hide_suggestions
            )
            return _body(data, errors, request_id)
        result = execute(
            self.schema,
            prepared.document,
            context_value=context,
            variable_values=variables,
            operation_name=operation_name,
            executor_class=self.executor_class,
            is_awaitable=is_awaitable,
            hide_suggestions=self.hide_suggestions,
            operation_extensions=None,  # strawberry's execution context expects it
        )
        if isawaitable(result):
            result = await result
        return _body(result.data, result.errors, request_id)

    @staticmethod
    def _operation(prepared: Prepared, name: str | None) -> OperationDefinitionNode:
        if name is None:
            if len(prepared.operations) != 1:
                raise RequestError(
                    "The document holds several operations: say which in `operationName`."
                )
            return next(iter(prepared.operations.values()))
        found = prepared.operations.get(name)
        if found is None:
            raise RequestError(f"The document has no operation named {name!r}.")
        return found

    @staticmethod
    def _amounts(
        prepared: Prepared, name: str | None, variables: dict[str, Any] | None
    ) -> LimitExceeded | None:
        if not variables and name in prepared.amounts:
            return prepared.amounts[name]
        assert prepared.document is not None
        try:
            check_amounts(prepared.document, name, variables)
            refused = None
        except LimitExceeded as exc:
            refused = exc
        if not variables:
            prepared.amounts[name] = refused
        return refused
