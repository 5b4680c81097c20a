"""coop's pytest plugin for scorer authors (entry point `pytest11`, installed with
`pip install "coop[test]"`): a `now` fixture, a `records` fixture (coop.testing's record
builders) and a default per-test timeout of 30 s when pytest-timeout is installed and the
project sets none (a scorer that loops forever fails its test instead of hanging it)."""

from __future__ import annotations

import types
from datetime import datetime

import pytest

DEFAULT_TIMEOUT = 30.0


@pytest.fixture
def now() -> datetime:
    """The fixed time coop.testing's builders use by default (coop.testing.NOW)."""
    from coop.testing import NOW

    return NOW


@pytest.fixture
def records() -> types.ModuleType:
    """coop.testing itself: `records.post(days_ago=1)`, `records.repository(...)`, …"""
    from coop import testing

    return testing


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.pluginmanager.hasplugin("timeout"):
        return
    if config.getoption("timeout", None) or config.getini("timeout"):
        return  # the project (or the command line) chose its own
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(DEFAULT_TIMEOUT))
