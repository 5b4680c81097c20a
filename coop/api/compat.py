"""Where coop leans on strawberry and graphql-core beyond their documented APIs: one place.

The compiled plans (coop.api.plans) answer as graphql-core's executor with strawberry's
resolvers would, so they hold only for the versions they were tested with. pyproject.toml
bounds both libraries above and below to that range; tests/api/test_compat.py fails, saying
what to do, when an installed version falls outside it or when the behaviour relied on here
changes. To upgrade: raise the bounds in pyproject.toml, reinstall, and run tests/api (the
compat test, then the differential tests in test_plans.py, which force every error path).
"""

from __future__ import annotations

from graphql import GraphQLSchema
from strawberry import Schema

# distribution -> the pins in pyproject.toml (kept equal by tests/api/test_compat.py)
TESTED = {
    "strawberry-graphql": ">=0.341.2,<0.342",
    "graphql-core": ">=3.3.2,<3.4",
}


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
