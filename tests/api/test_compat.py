"""The library versions and behaviour the compiled plans mirror (coop.api.compat).

When one of these fails after an upgrade of strawberry-graphql or graphql-core, do not
loosen it: run tests/api/test_plans.py (the differential tests force every error path),
fix coop/api/plans.py or coop/api/compat.py where they disagree, then move the bounds in
pyproject.toml and compat.TESTED together.
"""

from __future__ import annotations

import inspect
import re
import tomllib
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import graphql
import pytest
from graphql import GraphQLObjectType, GraphQLSchema
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from strawberry.resolvers import is_default_resolver

from coop.api.compat import STRAWBERRY_RULES, TESTED, UnsupportedLibraryError, core_schema
from coop.api.schema import schema

ROOT = Path(__file__).resolve().parents[2]
HOW = (
    "coop's compiled GraphQL plans are tested with {tested}; see tests/api/test_compat.py's "
    "docstring for how to upgrade"
)


def untested(installed: Mapping[str, str]) -> list[str]:
    """What is installed outside the tested range, in words."""
    return [
        f"{name} {installed[name]} is installed, outside {spec}"
        for name, spec in TESTED.items()
        if installed[name] not in SpecifierSet(spec)
    ]


def test_the_pins_in_pyproject_are_the_tested_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {}
    for line in project["dependencies"]:
        requirement = Requirement(line)
        if requirement.name in TESTED:
            pins[requirement.name] = str(requirement.specifier)
    assert {n: str(SpecifierSet(s)) for n, s in TESTED.items()} == pins, (
        "pyproject.toml's bounds and coop/api/compat.py's TESTED must name the same range"
    )
    for spec in TESTED.values():
        assert re.search(r"<\d", spec), f"{spec}: an upper bound is required"


def test_the_installed_versions_are_the_tested_ones() -> None:
    found = untested({name: metadata.version(name) for name in TESTED})
    assert not found, "; ".join(found) + ". " + HOW.format(tested=TESTED)


def test_a_version_outside_the_range_is_reported() -> None:
    found = untested({"strawberry-graphql": "0.342.0", "graphql-core": "3.3.2"})
    assert found == ["strawberry-graphql 0.342.0 is installed, outside >=0.341.2,<0.342"]
    assert untested({"strawberry-graphql": "0.341.9", "graphql-core": "3.3.7"}) == []


def test_strawberry_still_keeps_the_graphql_core_schema_where_compat_reads_it() -> None:
    assert isinstance(core_schema(schema), GraphQLSchema)

    class Elsewhere:
        pass

    with pytest.raises(UnsupportedLibraryError, match=r"coop/api/compat\.py must learn"):
        core_schema(Elsewhere())  # type: ignore[arg-type]


def test_strawberry_still_resolves_a_basic_field_with_get_result_alone() -> None:
    """The plans read a basic field (no resolver, no extension) with
    `StrawberryField.get_result`: that holds while strawberry gives such a field its default
    resolver, which calls just that."""
    core = core_schema(schema)
    checked = 0
    for kind in core.type_map.values():
        if not isinstance(kind, GraphQLObjectType) or kind.name.startswith("__"):
            continue
        for name, field in kind.fields.items():
            found = schema.get_field_for_type(name, kind.name)
            if found is not None and found.is_basic_field:
                assert is_default_resolver(field.resolve), f"{kind.name}.{name}"
                assert "get_result" in inspect.getsource(field.resolve), f"{kind.name}.{name}"
                checked += 1
    assert checked > 20


def test_graphql_core_still_offers_what_the_plans_call() -> None:
    parameters = inspect.signature(graphql.get_variable_values).parameters
    assert {"max_errors", "hide_suggestions"} <= set(parameters)
    assert callable(graphql.GraphQLFloat.coerce_output_value)  # a scalar's: set per instance
    assert callable(graphql.GraphQLEnumType.coerce_output_value)
    assert "path" in inspect.signature(graphql.located_error).parameters


def test_strawberry_still_validates_with_the_rules_coop_adds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """coop validates with graphql-core's rules plus STRAWBERRY_RULES: the rules
    strawberry's own validation adds, no more, no fewer."""
    import strawberry.schema.schema as strawberry_schema

    seen: list[Any] = []

    def validate(_schema: Any, _document: Any, rules: Any) -> list[Any]:
        seen.extend(rules)
        return []

    monkeypatch.setattr(strawberry_schema, "validate", validate)
    strawberry_schema.validate_document(
        core_schema(schema), graphql.parse("{ __typename }"), tuple(graphql.specified_rules)
    )
    added = [rule for rule in seen if rule not in graphql.specified_rules]
    assert added == list(STRAWBERRY_RULES)
