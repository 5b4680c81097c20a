"""Schema extensions: depth/alias/token limits, the node ceiling, caches, error shaping.

Every extension is passed to the schema as a class (a fresh instance per request, never a
shared one). The limiters reuse validator classes built once at import: strawberry's own
constructors build a new rule class per instance, which would defeat the ValidationCache
(its key includes the rule classes).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.extensions.max_aliases import create_validator as alias_validator
from strawberry.extensions.query_depth_limiter import create_validator as depth_validator

from coop.api.errors import UNEXPECTED_MESSAGE, Code, code_for_coop_error
from coop.api.limits import MAX_ALIASES, MAX_DEPTH, MAX_TOKENS, LimitExceeded, check_amounts
from coop.errors import CoopError

log = logging.getLogger("coop.api")

_DEPTH_RULE = depth_validator(MAX_DEPTH, None, None)
_ALIAS_RULE = alias_validator(MAX_ALIASES)
CACHE_SIZE = 256


class DepthLimit(AddValidationRules):
    """QueryDepthLimiter(max_depth=MAX_DEPTH) with a validator class shared by all requests."""

    def __init__(self) -> None:
        super().__init__([_DEPTH_RULE])


class AliasLimit(AddValidationRules):
    """MaxAliasesLimiter(max_alias_count=MAX_ALIASES), shared validator class."""

    def __init__(self) -> None:
        super().__init__([_ALIAS_RULE])


class TokenLimit(MaxTokensLimiter):
    """Parsing stops past MAX_TOKENS tokens (this also bounds introspection, GQ-08)."""

    def __init__(self) -> None:
        super().__init__(max_token_count=MAX_TOKENS)


class SharedParserCache(ParserCache):
    """ParserCache whose parse errors surface inside the operation (so they get a code).

    strawberry's ParserCache raises from its hook, outside the operation's error handling;
    here a failing parse leaves the document unset and strawberry parses (and reports) it.
    """

    def __init__(self) -> None:
        super().__init__(maxsize=CACHE_SIZE)

    def on_parse(self) -> Iterator[None]:
        ctx = self.execution_context
        with contextlib.suppress(GraphQLError):
            ctx.graphql_document = self.cached_parse_document(ctx.query, **ctx.parse_options)
        yield


class SharedValidationCache(ValidationCache):
    def __init__(self) -> None:
        super().__init__(maxsize=CACHE_SIZE)


class AmountLimit(SchemaExtension):
    """Checks `first` bounds and the node ceiling after validation, before execution."""

    def on_execute(self) -> Iterator[None]:
        ctx = self.execution_context
        if ctx.graphql_document is not None and ctx.result is None:
            try:
                check_amounts(ctx.graphql_document, ctx.operation_name, ctx.variables)
            except LimitExceeded as exc:
                error = GraphQLError(exc.message, extensions={"code": exc.code})
                ctx.result = GraphQLExecutionResult(data=None, errors=[error])
        yield


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


EXTENSIONS: list[type[SchemaExtension]] = [
    ShapeErrors,
    TokenLimit,
    SharedParserCache,
    DepthLimit,
    AliasLimit,
    SharedValidationCache,
    AmountLimit,
]
