"""`coop plugins list` shows the fields a scorer declares per kind, in the table and in
`--json` (issue 16 point 4): cadence reads dates and networks only, reach reads whole kinds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(300)

COOP = str(Path(sys.executable).parent / "coop")


def test_plugins_list_shows_declared_fields(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "COOP_DATA_DIR": str(tmp_path / "var"),
        "COOP_DATABASE_URL": f"sqlite://{tmp_path / 'coop.sqlite3'}",
        "COOP_PLUGINS": "reach,cadence",
    }

    def coop(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [COOP, "plugins", "list", *args], env=env, capture_output=True, text=True, timeout=150
        )

    listed = coop("--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)["plugins"]}
    assert rows["cadence"]["fields"] == {
        "post": ["occurred_at", "network"],
        "activity": ["occurred_at", "network"],
    }
    assert rows["reach"]["fields"] == {} and rows["reach"]["reads"] == ["post", "repository"]
    table = coop()
    assert table.returncode == 0, table.stderr
    assert (
        "reads post (fields occurred_at, network), activity (fields occurred_at, network)"
        in table.stdout
    )
    assert "reads post, repository\n" in table.stdout
