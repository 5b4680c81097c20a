"""WS-04 at every idle timeout, down to the documented minimum: a member who keeps browsing is
never logged out, and one who stops is logged out within the timeout."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import httpx
import pytest

from coop.config import Settings
from coop.errors import ConfigError
from coop.members.models import WebSession
from coop.types import clock
from tests.web.journeys import log_in_new_member

MINIMUM_IDLE = 60  # COOP_SESSION_IDLE_SECONDS' documented minimum (docs/operations.md)


@pytest.fixture(params=[MINIMUM_IDLE, 61, 300, 1800])
def idle(request: pytest.FixtureRequest) -> int:
    seconds: int = request.param
    return seconds


@pytest.fixture
async def idle_client(settings: Settings, db: str, idle: int) -> AsyncIterator[httpx.AsyncClient]:
    from coop.app import build_app

    app = build_app(dataclasses.replace(settings, session_idle_seconds=idle), manage_db=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
        yield c


def test_the_documented_minimum_is_the_one_the_settings_enforce() -> None:
    Settings.from_env({"COOP_SESSION_IDLE_SECONDS": str(MINIMUM_IDLE)})
    with pytest.raises(ConfigError):
        Settings.from_env({"COOP_SESSION_IDLE_SECONDS": str(MINIMUM_IDLE - 1)})


async def test_a_member_browsing_at_nine_tenths_of_the_idle_timeout_stays_logged_in(
    idle_client: httpx.AsyncClient, idle: int
) -> None:
    await log_in_new_member(idle_client)
    pause = idle * 9 // 10
    for _ in range(12):
        clock.advance(pause)
        response = await idle_client.get("/account")
        assert response.status_code == 200, f"logged out after a {pause} s pause (idle {idle})"


async def test_a_member_who_stops_is_logged_out_within_the_idle_timeout(
    idle_client: httpx.AsyncClient, idle: int
) -> None:
    await log_in_new_member(idle_client)
    for _ in range(5):  # some activity first, at odd moments
        clock.advance(idle // 3 + 1)
        assert (await idle_client.get("/account")).status_code == 200

    clock.advance(idle + 1)

    response = await idle_client.get("/account")
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    assert await WebSession.all().count() == 0
