"""Connector tests: loopback is on the outbound allow-list (fake upstreams run there)."""

from __future__ import annotations

import pytest

from coop.config import Settings
from tests.connectors.helpers import (  # noqa: F401  (fixtures)
    allow_loopback,
    blog,
    blog_server,
    fake_sleep,
    jobs,
    member,
)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return allow_loopback(settings)
