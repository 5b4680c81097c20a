"""Through the real app: a hostile scorer that hangs while a member enables it leaves the
server answering, and the member's other scorers still score."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from coop.app import build_app
from coop.config import Settings
from coop.connectors import spec
from coop.jobs import scoring as scoring_jobs
from coop.members.models import Member
from coop.scoring.models import Score
from coop.types import utcnow
from coop.vault import Vault
from tests.scoring.factories import add_records
from tests.web.journeys import finish_jobs, log_in_new_member, page_token

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def hostile_client(
    settings: Settings, db: str, hostile_site: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    hostile = dataclasses.replace(settings, plugin_path=(str(hostile_site),), scorer_timeout=2.0)
    app = build_app(hostile, manage_db=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
        try:
            yield c, app
        finally:
            await scoring_jobs.close(app.state.runtime)


async def test_a_hanging_scorer_does_not_take_the_server_down(
    hostile_client: tuple[httpx.AsyncClient, Any], vault: Vault
) -> None:
    client, app = hostile_client
    await log_in_new_member(client)
    member = await Member.all().first()
    assert member is not None
    hang = spec.Record(
        kind="post", external_id="1", occurred_at=utcnow(), counts={"reblogs": 4}, text="sleep"
    )
    await add_records(vault, member.id, [hang])
    token = await page_token(client, "/scorers")
    assert (
        await client.post("/scorers/reach/enable", data={"csrf_token": token})
    ).status_code == 303
    await finish_jobs(app)

    enabling = asyncio.create_task(
        client.post("/scorers/hostile/enable", data={"csrf_token": token})
    )
    sandbox = app.state.runtime.scoring.runner
    async with asyncio.timeout(60):  # bounded, and generous: a loaded machine forks slowly
        # until the hostile scorer sleeps in its sandbox (no event tells a child started)
        while sandbox.running == 0:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    health = await client.get("/healthz")
    assert health.status_code == 200
    home = await client.get("/")
    assert "Reach</a>:" in home.text
    enabled = await enabling
    assert enabled.status_code == 303
    await finish_jobs(app)
    page = await client.get("/scorers")
    assert "took longer than this cooperative allows" in page.text
    assert "plugin_timeout" not in page.text  # plain words, no internals
    assert await Score.filter(member_id=member.id, scorer="hostile").count() == 0
    assert await Score.filter(member_id=member.id, scorer="reach").count() == 1
