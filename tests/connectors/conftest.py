"""Connector tests: loopback is on the outbound allow-list (fake upstreams run there)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

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


@pytest.fixture
async def app(settings: Settings, db: str) -> AsyncIterator[Any]:
    """The in-process app with its lifespan entered (scheduler off), so whatever the
    composition starts for a sync (job queue, rescoring hooks) is shut down after the test."""
    from coop.app import build_app

    application = build_app(settings, manage_db=False)
    async with application.router.lifespan_context(application):
        yield application
