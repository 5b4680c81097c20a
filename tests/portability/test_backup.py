"""`coop backup` / `coop restore`: a backup taken before a deletion, restored after it, does
not bring the member back (ER-05). Every step runs as its own process, as an operator would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ENGINES, _pg_url, create_pg_database, drop_pg_database, make_master_key

ROOT = Path(__file__).parents[2]
COOP = str(Path(sys.executable).with_name("coop"))


@pytest.fixture(params=ENGINES)
async def operator_env(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    engine = request.param
    pg_name = None
    if engine == "sqlite":
        url = f"sqlite://{tmp_path / 'live' / 'coop.sqlite3'}"
    else:
        pg_name = await create_pg_database()
        url = _pg_url(pg_name)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("COOP_")},
        "COOP_DATABASE_URL": url,
        "COOP_DATA_DIR": str(tmp_path / "var"),
        "COOP_MASTER_KEY": make_master_key(),
        "COOP_SECRET_KEY": "s" * 48,
        "PYTHONPATH": str(ROOT),
    }
    try:
        yield engine, env
    finally:
        if pg_name:
            await drop_pg_database(pg_name)


def run(env: dict[str, str], *argv: str) -> str:
    result = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def step(env: dict[str, str], *args: str) -> Any:
    out = run(env, sys.executable, "-m", "tests.portability.scenario", *args)
    return json.loads(out.strip().splitlines()[-1])


def test_a_restored_backup_does_not_resurrect_a_deleted_member(
    operator_env: Any, tmp_path: Path
) -> None:
    engine, env = operator_env
    people = step(env, "seed")["people"]
    gone, kept = people[0]["id"], people[1]["id"]
    backup_file = tmp_path / "before.backup"

    out = run(env, COOP, "backup", "--out", str(backup_file))
    assert engine in out and backup_file.exists()
    assert (backup_file.stat().st_mode & 0o777) == 0o600
    step(env, "erase", gone)
    out = run(env, COOP, "restore", str(backup_file))
    assert "1 erased members removed again" in out

    after = step(env, "inspect", gone, kept)
    assert after[gone] == {"rows": {}, "key": False}
    assert after[kept]["key"] is True and after[kept]["rows"]["connector_record"] > 0

    # The ledger lives on outside the database: a second restore is just as safe.
    run(env, COOP, "restore", str(backup_file))
    assert step(env, "inspect", gone)[gone] == {"rows": {}, "key": False}


def test_restore_refuses_a_file_that_is_not_a_backup(operator_env: Any, tmp_path: Path) -> None:
    _, env = operator_env
    bogus = tmp_path / "bogus.backup"
    bogus.write_text("not a backup")
    result = subprocess.run(
        [COOP, "restore", str(bogus)], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "is not a coop backup" in result.stderr
