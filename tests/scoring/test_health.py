"""A scorer that loads but fails at run time shows as failing in `coop plugins list` (count,
time and kind of the last failure, never member data), which then exits 1; the kinds a
scorer reads but none of its runs received are warned about, there and in the log."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from tortoise import connections
from tortoise.transactions import in_transaction

from coop.connectors import spec
from coop.scoring import health, service
from coop.scoring.models import ScorerRunCounts
from coop.scoring.sandbox import Sandbox
from coop.types import utcnow
from coop.vault import Vault
from tests.scoring.factories import make_member

pytestmark = pytest.mark.timeout(180)

COOP = str(Path(sys.executable).parent / "coop")
SECRET = "member secret text in an exception"


def post(text: str, n: int = 0) -> service.MemberRecord:
    return service.MemberRecord(uuid.uuid4(), spec.POST, utcnow() - timedelta(days=n), {}, text)


async def run_hostile(vault: Vault, sandbox: Sandbox, member: uuid.UUID, text: str) -> str:
    await service.enable_scorer(member_id=member, meta=sandbox.meta("hostile"))
    outcome = await service.compute_score(
        vault=vault, runner=sandbox, member_id=member, scorer="hostile", records=[post(text)]
    )
    return outcome.status


async def test_runtime_failures_are_counted_with_their_kind_and_place_but_no_message(
    db: str, vault: Vault, sandbox: Sandbox
) -> None:
    member = await make_member(vault)
    assert await run_hostile(vault, sandbox, member, "ok") == "stored"
    assert await run_hostile(vault, sandbox, member, "raise") == "failed"
    found = (await health.recent())["hostile"]
    assert (found.runs, found.failures) == (2, 1)
    assert found.last_failure.startswith("plugin_error: raised RuntimeError at ")
    assert "coop_score_hostile/__init__.py:" in found.last_failure
    assert found.last_failure.endswith(" in score")
    assert found.last_failure_version == "6.6.6"
    assert found.last_failure_at is not None
    stored = await ScorerRunCounts.all().values_list("last_failure", flat=True)
    assert not any(SECRET in str(text) or text == "ok" for text in stored)
    # It reads four kinds; its runs received posts only.
    assert found.fed == {"post": 2}
    assert found.unfed(("post", "repository", "activity", "audience")) == [
        "repository",
        "activity",
        "audience",
    ]


async def test_runs_older_than_24_hours_are_not_recent(db: str) -> None:
    old = utcnow() - timedelta(hours=30)
    error = service.ScorerError()
    await health.record_run(scorer="x", version="1", kinds_given=["post"], error=error, now=old)
    assert "x" not in await health.recent()
    await health.record_run(scorer="x", version="1", kinds_given=[])
    now = (await health.recent())["x"]
    assert (now.runs, now.failures, now.last_failure) == (1, 0, "")
    assert now.unfed(("post",)) == ["post"]


async def test_hours_older_than_a_week_are_deleted_when_a_new_hour_starts(db: str) -> None:
    await health.record_run(scorer="x", version="1", kinds_given=[], now=utcnow() - timedelta(8))
    await health.record_run(scorer="x", version="1", kinds_given=[])
    assert await ScorerRunCounts.filter(scorer="x").count() == 1


async def test_the_log_warns_once_about_kinds_a_run_lacked_without_member_data(
    db: str, vault: Vault, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    health.unfed_log = health.UnfedLog()
    member = await make_member(vault)
    with caplog.at_level(logging.WARNING, logger="coop.scoring"):
        await run_hostile(vault, sandbox, member, "ok")
        await run_hostile(vault, sandbox, member, "ok")
    lines = [r for r in caplog.records if r.getMessage().startswith("scorer received no")]
    assert len(lines) == 1
    assert lines[0].plugin == "hostile"  # type: ignore[attr-defined]
    assert lines[0].kinds == ["repository", "activity", "audience"]  # type: ignore[attr-defined]
    assert str(member) not in caplog.text


async def test_plugins_list_shows_a_runtime_failure_and_exits_1(
    db: str, database_url: str, vault: Vault, sandbox: Sandbox, hostile_site: Path, tmp_path: Path
) -> None:
    member = await make_member(vault)
    assert await run_hostile(vault, sandbox, member, "raise") == "failed"
    env = {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "COOP_DATA_DIR": str(tmp_path / "var"),
        "COOP_DATABASE_URL": database_url,
        "COOP_PLUGIN_PATH": str(hostile_site),
        "COOP_PLUGINS": "hostile,polite,reach,cadence",
    }
    if "PGPASSWORD" in os.environ:
        env["PGPASSWORD"] = os.environ["PGPASSWORD"]

    def coop(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [COOP, "plugins", "list", *args], env=env, capture_output=True, text=True, timeout=150
        )

    listed = coop("--json")
    assert listed.returncode == 1, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)["plugins"]}
    hostile = rows["hostile"]
    assert hostile["status"] == "failing"
    assert hostile["runs"]["last_24h"] == 1 and hostile["runs"]["failures"] == 1
    assert hostile["runs"]["last_failure"]["what"].startswith("plugin_error: raised RuntimeError")
    assert hostile["runs"]["last_failure"]["version"] == "6.6.6"
    assert any("reads audience records but none of its 1 runs" in w for w in hostile["warnings"])
    assert rows["polite"]["status"] == "loaded"
    assert rows["polite"]["runs"] == {"last_24h": 0, "failures": 0, "last_failure": None}
    assert SECRET not in listed.stdout
    table = coop()
    assert table.returncode == 1
    assert "FAILING: 1 of 1 runs in the last 24 h failed; last at " in table.stdout
    assert SECRET not in table.stdout


async def _lock_waiters() -> int:
    """Sessions of this database waiting for a lock held by another session."""
    conn = connections.get("default")
    await conn.execute_query("SELECT pg_stat_clear_snapshot()")  # a transaction caches it
    rows = await conn.execute_query_dict(
        "SELECT count(*) AS n FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    return int(rows[0]["n"])


async def test_a_run_is_recorded_while_another_worker_holds_its_run_row(
    engine: str, db: str
) -> None:
    """Workers share PostgreSQL: one worker's open transaction that recorded a run (or a
    slow commit) must not make every other worker's scoring wait on the same row."""
    if engine != "postgres":
        pytest.skip("row locks between sessions (SQLite has one writer)")
    go = asyncio.Event()

    async def other_worker() -> None:  # its own connection: started outside the transaction
        await go.wait()
        await health.record_run(scorer="x", version="1", kinds_given=["post"])

    other = asyncio.create_task(other_worker())
    await health.record_run(scorer="x", version="1", kinds_given=["post"])  # the hour's rows
    blocked = False
    try:
        async with in_transaction():
            await health.record_run(scorer="x", version="1", kinds_given=["post"])
            go.set()
            while not other.done():
                if await _lock_waiters():
                    blocked = True
                    break
                await asyncio.sleep(0.01)
    finally:
        await other  # the rollback or commit above let it through either way
    assert not blocked, "recording a run waited on another session's row lock"
    found = (await health.recent())["x"]
    assert (found.runs, found.fed) == (3, {"post": 3})
