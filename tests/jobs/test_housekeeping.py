"""Housekeeping: stale token rows, grants past their end and dead sessions go, on a schedule
that starts with the app (when the scheduler runs) and survives a failing step."""

from __future__ import annotations

import dataclasses
import logging
from datetime import timedelta

import pytest

from coop.config import Settings
from coop.consent import accesslog
from coop.consent.models import AccessLogEntry, Grant, OAuthToken
from coop.jobs.housekeeping import Housekeeping
from coop.members import sessions
from coop.members.models import WebSession
from coop.types import clock
from coop.vault import Vault
from tests.consent.conftest import issue
from tests.oauth.support import make_member, register


async def test_one_round_cleans_tokens_grants_and_sessions(
    db: str, vault: Vault, settings: Settings
) -> None:
    member = await make_member(vault)
    item = await issue(member.id, await register(vault), lifetime="1d")
    await sessions.start(vault=vault, settings=settings, member=member, user_agent="test")
    housekeeping = Housekeeping(settings)
    assert await housekeeping.run_once() == {
        "oauth": 0,
        "grants": 0,
        "sessions": 0,
        "rate_limits": 0,
        "access_log": 0,
        "proposals": 0,
    }
    clock.advance(31 * 86400 + 60)
    try:
        done = await housekeeping.run_once()
    finally:
        clock.reset()
    # The grant ran out after a day: its code and token row, ended 30 days ago, go; the grant
    # is recorded as expired; the session passed its absolute timeout.
    assert done == {
        "oauth": 2,
        "grants": 1,
        "sessions": 1,
        "rate_limits": 0,
        "access_log": 0,
        "proposals": 0,
    }
    assert (await Grant.get(id=item.grant.id)).status == "expired"
    assert await WebSession.filter(member_id=member.id).count() == 0
    assert await OAuthToken.filter(grant_id=item.grant.id).count() == 0


async def test_access_log_rows_past_the_retention_go_and_newer_ones_stay(
    db: str, vault: Vault, settings: Settings
) -> None:
    member = await make_member(vault)
    kept_forever = Housekeeping(dataclasses.replace(settings, access_log_retention_days=0))
    housekeeping = Housekeeping(dataclasses.replace(settings, access_log_retention_days=30))
    for days_ago in (45, 31, 29, 1):
        await accesslog.record(
            member_id=member.id,
            scope="profile",
            resource="profile",
            app_name="Alpha",
            at=clock.now() - timedelta(days=days_ago),
        )
    assert (await kept_forever.run_once())["access_log"] == 0
    assert (await housekeeping.run_once())["access_log"] == 2
    left = await AccessLogEntry.filter(member_id=member.id).values_list("at", flat=True)
    assert sorted((clock.now() - at).days for at in left) == [1, 29]
    for _ in range(3):  # batches of one: the loop goes on until no old row is left
        await accesslog.record(
            member_id=member.id,
            scope="p",
            resource="p",
            app_name="A",
            at=clock.now() - timedelta(days=40),
        )
    assert await accesslog.purge_older_than(days=30, batch=1) == 3


async def test_a_failing_step_does_not_stop_the_others(
    db: str, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    housekeeping = Housekeeping(settings)

    async def broken() -> int:
        raise RuntimeError("database restarting")

    housekeeping.steps["oauth"] = broken
    with caplog.at_level(logging.WARNING, logger="coop.jobs.housekeeping"):
        done = await housekeeping.run_once()
    assert done == {
        "oauth": None,
        "grants": 0,
        "sessions": 0,
        "rate_limits": 0,
        "access_log": 0,
        "proposals": 0,
    }
    assert [r.step for r in caplog.records] == ["oauth"]  # type: ignore[attr-defined]


async def test_the_app_runs_housekeeping_with_the_scheduler(settings: Settings, db: str) -> None:
    from coop.app import build_app

    app = build_app(dataclasses.replace(settings, scheduler=True), manage_db=False)
    async with app.router.lifespan_context(app):
        housekeeping = app.state.runtime.housekeeping
        assert (
            housekeeping is not None
            and housekeeping._task is not None
            and not housekeeping._task.done()
        )
    assert housekeeping._task is None
    quiet = build_app(settings, manage_db=False)  # COOP_SCHEDULER off in the test settings
    async with quiet.router.lifespan_context(quiet):
        assert quiet.state.runtime.housekeeping is None


async def test_a_failing_round_is_logged_and_the_next_one_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import asyncio

    from coop.jobs.periodic import Periodic

    class Flaky(Periodic):
        name = "flaky"

        def __init__(self) -> None:
            super().__init__(0.001)
            self.rounds = 0
            self.third = asyncio.Event()

        async def round(self) -> object:
            self.rounds += 1
            if self.rounds == 3:
                self.third.set()
            if self.rounds == 1:
                raise RuntimeError("database restarting")
            return None

    flaky = Flaky()
    with caplog.at_level(logging.WARNING, logger="coop.jobs"):
        flaky.start()
        await asyncio.wait_for(flaky.third.wait(), 5)
        await flaky.stop()
    assert flaky._task is None
    assert [r.getMessage() for r in caplog.records] == ["flaky round failed"]
