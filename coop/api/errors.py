"""Stable `extensions.code` values and the one place CoopErrors become GraphQL errors."""

from __future__ import annotations

from enum import StrEnum

from graphql import GraphQLError

from coop.errors import (
    ConflictError,
    CoopError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
)


class Code(StrEnum):
    """Every error the API returns carries one of these in `extensions.code`."""

    GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
    GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
    BAD_USER_INPUT = "BAD_USER_INPUT"
    BAD_REQUEST = "BAD_REQUEST"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    RATE_LIMITED = "RATE_LIMITED"
    MAX_NODE_LIMIT_EXCEEDED = "MAX_NODE_LIMIT_EXCEEDED"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    INTERNAL = "INTERNAL"


UNEXPECTED_MESSAGE = "Unexpected error."
NOT_FOUND_MESSAGE = "Nothing was found with that id or name."


class ApiError(GraphQLError):
    """A client-caused error raised by a resolver: its message and code reach the client."""

    def __init__(self, message: str, code: Code, **extra: object) -> None:
        super().__init__(message, extensions={"code": code.value, **extra})


def not_found() -> ApiError:
    """The single answer for "missing", "someone else's" and "not allowed to know" (GQ-01)."""
    return ApiError(NOT_FOUND_MESSAGE, Code.NOT_FOUND)


def forbidden(scope: str) -> ApiError:
    return ApiError(f"This field needs the `{scope}` scope.", Code.FORBIDDEN, required_scope=scope)


def bad_input(message: str) -> ApiError:
    return ApiError(message, Code.BAD_USER_INPUT)


def code_for_coop_error(error: CoopError) -> Code:
    """Map a service error to the API's code (one place, as ARCHITECTURE.md asks)."""
    if isinstance(error, NotFoundError):
        return Code.NOT_FOUND
    if isinstance(error, PermissionDeniedError):
        return Code.FORBIDDEN
    if isinstance(error, InvalidInputError):
        return Code.BAD_USER_INPUT
    if isinstance(error, ConflictError):
        return Code.CONFLICT
    if isinstance(error, RateLimitedError):
        return Code.RATE_LIMITED
    if 400 <= error.status < 500:
        return Code.BAD_REQUEST
    return Code.INTERNAL
