"""Schema extensions: `Limits` (token/depth/alias limits, node ceiling, parse and validation
caches) and `ShapeErrors` (masking and stable codes). Both are passed to the schema as
classes: a fresh instance per request, never a shared one.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError, parse
from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.extensions.max_aliases import create_validator as alias_validator
from strawberry.extensions.query_depth_limiter import create_validator as depth_validator
from strawberry.schema.schema import validate_document

from coop.api.errors import UNEXPECTED_MESSAGE, Code, code_for_coop_error
from coop.api.limits import MAX_ALIASES, MAX_DEPTH, MAX_TOKENS, LimitExceeded, check_amounts
from coop.errors import CoopError

log = logging.getLogger("coop.api")

CACHE_SIZE = 256  # bounded: unique query texts must not grow memory without limit
# strawberry's QueryDepthLimiter / MaxAliasesLimiter rules, built once (see Limits).
_RULES = (depth_validator(MAX_DEPTH, None, None), alias_validator(MAX_ALIASES))
_cached_parse = lru_cache(maxsize=CACHE_SIZE)(parse)
_cached_validate = lru_cache(maxsize=CACHE_SIZE)(validate_document)
_NO_ERROR = LimitExceeded("", "")
_amounts: dict[tuple[str, str | None], LimitExceeded] = {}


class Limits(SchemaExtension):
    """Every pre-execution limit and cache in ONE extension.

    It applies, in order: MaxTokensLimiter (parsing stops past MAX_TOKENS tokens, which also
    bounds nested introspection, GQ-08); ParserCache; the validation rules of strawberry's
    QueryDepthLimiter(max_depth=MAX_DEPTH) and MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
    built once at import; ValidationCache; then, before execution, the page bounds and the node
    ceiling (GQ-10). One extension instead of five because strawberry's hook machinery costs
    about 8 µs per extension per request (docs/benchmarks.md), and because the limiters'
    constructors build a new rule class per instance, which would defeat the ValidationCache
    (its key includes the rule classes).
    """

    def on_operation(self) -> Iterator[None]:
        ctx = self.execution_context
        ctx.parse_options["max_tokens"] = MAX_TOKENS
        ctx.validation_rules = ctx.validation_rules + _RULES
        yield

    def on_parse(self) -> Iterator[None]:
        # A failing parse leaves the document unset: strawberry then parses again inside the
        # operation's error handling, so the syntax error gets its code like any other.
        ctx = self.execution_context
        with contextlib.suppress(GraphQLError):
            ctx.graphql_document = _cached_parse(ctx.query, **ctx.parse_options)
        yield

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        ctx.pre_execution_errors = _cached_validate(
            ctx.schema._schema, ctx.graphql_document, ctx.validation_rules
        )
        yield

    def on_execute(self) -> Iterator[None]:
        ctx = self.execution_context
        if ctx.graphql_document is not None and ctx.result is None:
            error = self._amount_error(ctx)
            if error is not None:
                ctx.result = GraphQLExecutionResult(
                    data=None, errors=[GraphQLError(error.message, extensions={"code": error.code})]
                )
        yield

    @staticmethod
    def _amount_error(ctx: Any) -> LimitExceeded | None:
        key = (ctx.query, ctx.operation_name)
        if not ctx.variables and key in _amounts:  # same text, same answer
            found = _amounts[key]
            return None if found is _NO_ERROR else found
        try:
            check_amounts(ctx.graphql_document, ctx.operation_name, ctx.variables)
            error = None
        except LimitExceeded as exc:
            error = exc
        if not ctx.variables:
            if len(_amounts) >= CACHE_SIZE:
                _amounts.clear()
            _amounts[key] = error or _NO_ERROR
        return error


def _request_id(context: Any) -> str:
    return str(getattr(context, "request_id", "-"))


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


class ShapeErrors(MaskErrors):
    """MaskErrors with a predicate, plus a stable `extensions.code` on every error.

    Expected errors (codes set by resolvers, CoopErrors, parse/validation/input errors) keep
    their message; anything else becomes "Unexpected error." with the request id.
    """

    def __init__(self) -> None:
        super().__init__(should_mask_error=lambda e: not classify(e)[1])

    def on_operation(self) -> Iterator[None]:
        # MaskErrors checks the result against a runtime Protocol (slow); coop runs no
        # incremental delivery, so the result is a plain ExecutionResult or None.
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[union-attr]

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        shaped: list[GraphQLError] = []
        request_id = _request_id(self.execution_context.context)
        for error in errors:
            code, expected = classify(error)
            message = error.message
            if isinstance(error.original_error, CoopError) and expected:
                message = error.original_error.message
            extensions: dict[str, Any] = {**(error.extensions or {}), "code": code}
            if not expected:
                message = UNEXPECTED_MESSAGE
                extensions = {"code": Code.INTERNAL.value, "request_id": request_id}
            # New objects: validation errors come from a cache shared by all requests.
            shaped.append(
                GraphQLError(
                    message,
                    nodes=error.nodes,
                    source=error.source,
                    positions=error.positions,
                    path=error.path,
                    extensions=extensions,
                )
            )
        return shaped


EXTENSIONS: list[type[SchemaExtension]] = [ShapeErrors, Limits]
