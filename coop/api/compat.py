"""Where coop leans on strawberry and graphql-core beyond their documented APIs: one place
(the graphql-core schema strawberry built, the validation rules and awaitable test strawberry
gives graphql-core, which coop's pipeline in coop.api.operation gives it too).

The compiled plans (coop.api.plans) answer as graphql-core's executor with strawberry's
resolvers would, so they hold only for the versions they were tested with. pyproject.toml
bounds both libraries above and below to that range; tests/api/test_compat.py fails, saying
what to do, when an installed version falls outside it or when the behaviour relied on here
changes. To upgrade: raise the bounds in pyproject.toml, reinstall, and run tests/api (the
compat test, then the differential tests in test_plans.py, which force every error path).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeGuard, cast

from graphql import GraphQLSchema
from graphql.validation import ASTValidationRule
from strawberry import Schema
from strawberry.execution import optimized_is_awaitable
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

# distribution -> the pins in pyproject.toml (kept equal by tests/api/test_compat.py)
TESTED = {
    "strawberry-graphql": ">=0.341.2,<0.342",
    "graphql-core": ">=3.3.2,<3.4",
}


# The rules strawberry's own validation adds to graphql-core's specified rules (its
# `strawberry.schema.schema.validate_document`): coop's pipeline validates with the same.
STRAWBERRY_RULES: tuple[type[ASTValidationRule], ...] = (
    MaybeNullValidationRule,
    OneOfInputValidationRule,
)
# strawberry's faster awaitable test, which strawberry gives graphql-core's executor (typed
# as returning bool, which it is in effect).
is_awaitable = cast("Callable[[Any], TypeGuard[Awaitable[Any]]]", optimized_is_awaitable)


class UnsupportedLibraryError(RuntimeError):
    """strawberry or graphql-core no longer behaves as coop's pipeline relies on."""


def core_schema(schema: Schema) -> GraphQLSchema:
    """The graphql-core schema strawberry built from `schema`. strawberry has no public
    accessor: its own integrations read `Schema._schema`, and so does coop, only here."""
    core = getattr(schema, "_schema", None)
    if not isinstance(core, GraphQLSchema):
        raise UnsupportedLibraryError(
            "strawberry.Schema no longer keeps its graphql-core schema in `_schema`: "
            "coop/api/compat.py must learn where it went (see its docstring)"
        )
    return core
