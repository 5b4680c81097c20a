"""`coop plugins run` runs an installed scorer in the server's sandbox on records from a
JSON file; `coop plugins list --json` says which scorers failed and exits 1 if any did."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(180)

COOP = str(Path(sys.executable).parent / "coop")


def coop(*args: str, site: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "COOP_DATA_DIR": str(cwd / "var"),
        "COOP_PLUGIN_PATH": str(site),
    }
    return subprocess.run(
        [COOP, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=150
    )


def records_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "records.json"
    item = {"kind": "post", "occurred_at": "2026-01-02T10:00:00+00:00", "text": text}
    path.write_text(json.dumps([{**item, "counts": {"reactions": 2}}]))
    return path


def test_a_scorer_runs_sandboxed_and_prints_its_result(hostile_site: Path, tmp_path: Path) -> None:
    ran = coop(
        "plugins", "run", "hostile", "--records", str(records_file(tmp_path, "ok")),
        "--now", "2026-01-03T00:00:00Z", site=hostile_site, cwd=tmp_path,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    # It reads four kinds; the file holds posts only: say so rather than score silently.
    assert ran.stderr.splitlines() == [
        f"warning: hostile reads {kind} records but the file has none"
        for kind in ("repository", "activity", "audience")
    ]
    result = json.loads(ran.stdout)
    assert result["value"] == 1.0
    assert result["contributions"][0]["ref"] == "r0"


def test_a_raising_scorer_shows_type_message_and_its_own_frames(
    hostile_site: Path, tmp_path: Path
) -> None:
    ran = coop(
        "plugins", "run", "hostile", "--records", str(records_file(tmp_path, "raise")),
        site=hostile_site, cwd=tmp_path,
    )  # fmt: skip
    assert ran.returncode == 1
    lines = ran.stderr.splitlines()
    assert lines[0] == "coop: plugin_error: The scorer failed (raised RuntimeError)."
    assert lines[1] == "RuntimeError: member secret text in an exception"
    frame = next(line for line in lines if "coop_score_hostile/__init__.py" in line)
    assert "in score" in frame
    assert 'raise RuntimeError("member secret text in an exception")' in ran.stderr
    assert "coop/scoring/" not in ran.stderr  # the plugin's frames only


def test_an_out_of_range_value_is_reported(hostile_site: Path, tmp_path: Path) -> None:
    ran = coop(
        "plugins", "run", "hostile", "--records", str(records_file(tmp_path, "range")),
        site=hostile_site, cwd=tmp_path,
    )  # fmt: skip
    assert ran.returncode == 1
    assert ran.stderr.startswith("coop: invalid_plugin_output: ")
    assert "value 1000 is outside the declared range [0, 10]" in ran.stderr


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("{", "is not JSON"),
        ('{"kind": "post"}', "must hold a JSON list"),
        ('[{"kind": "post"}]', "record 0: missing occurred_at"),
        ('[{"kind": "post", "occurred_at": "yesterday"}]', "record 0: occurred_at"),
        ('[{"kind": "post", "occurred_at": "2026-01-01", "counts": {"a": "x"}}]', "record 0"),
    ],
)
def test_bad_records_exit_2_with_one_line(
    hostile_site: Path, tmp_path: Path, content: str, why: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    ran = coop("plugins", "run", "hostile", "--records", str(path), site=hostile_site, cwd=tmp_path)
    assert ran.returncode == 2
    assert len(ran.stderr.strip().splitlines()) == 1
    assert why in ran.stderr


def test_unknown_scorer_and_bad_now_exit_2(hostile_site: Path, tmp_path: Path) -> None:
    path = records_file(tmp_path, "ok")
    unknown = coop(
        "plugins", "run", "nope", "--records", str(path), site=hostile_site, cwd=tmp_path
    )
    assert unknown.returncode == 2
    assert len(unknown.stderr.strip().splitlines()) == 1
    bad_now = coop(
        "plugins", "run", "hostile", "--records", str(path), "--now", "soon",
        site=hostile_site, cwd=tmp_path,
    )  # fmt: skip
    assert bad_now.returncode == 2
    assert "--now 'soon' is not an ISO 8601 date-time" in bad_now.stderr


def test_list_json_reports_failures_and_exits_1(hostile_site: Path, tmp_path: Path) -> None:
    listed = coop("plugins", "list", "--json", site=hostile_site, cwd=tmp_path)
    assert listed.returncode == 1
    rows = {row["name"]: row for row in json.loads(listed.stdout)["plugins"]}
    assert rows["broken"]["status"] == "failed"
    assert "ImportError" in rows["broken"]["reason"]
    assert rows["polite"]["status"] == "loaded"
    assert rows["polite"]["reads"]
