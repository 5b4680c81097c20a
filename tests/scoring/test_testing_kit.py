"""coop's pytest plugin (entry point pytest11) and coop.testing's discovery check, as a
plugin author's project sees them: pytest run in a folder of its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from coop_score_cadence import CadenceScorer

from coop.testing import assert_discovered

AUTHOR_TESTS = """
from coop.testing import NOW, post


def test_fixtures(now, records):
    assert now == NOW
    assert records.post(days_ago=1, now=now).kind == "post"


def test_default_timeout(request):
    assert request.node.get_closest_marker("timeout").args == (30.0,)
"""


def test_the_pytest_plugin_gives_now_records_and_a_default_timeout(tmp_path: Path) -> None:
    (tmp_path / "test_author.py").write_text(AUTHOR_TESTS)
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:asyncio"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "2 passed" in ran.stdout


class Unlisted(CadenceScorer):
    name = "unlisted_kit_check"


def test_discovery_check_names_the_missing_entry_point() -> None:
    with pytest.raises(AssertionError) as caught:
        assert_discovered(Unlisted)
    assert "no installed coop.scorers entry point is named 'unlisted_kit_check'" in str(
        caught.value
    )
    assert "Unlisted" in str(caught.value)


def test_discovery_check_passes_for_an_installed_scorer() -> None:
    assert_discovered(CadenceScorer)
