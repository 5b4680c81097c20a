"""coop's pytest plugin (entry point pytest11) and coop.testing's discovery check, as a
plugin author's project sees them: pytest run in a folder of its own."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from coop_score_cadence import CadenceScorer

from coop.testing import (
    MissingKindWarning,
    activity,
    assert_discovered,
    post,
    repository,
    run_scorer,
)

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


def test_run_scorer_warns_for_each_kind_it_reads_that_the_records_lack() -> None:
    with pytest.warns(MissingKindWarning) as caught:
        result = run_scorer(CadenceScorer, [post(days_ago=1)])
    assert [str(w.message) for w in caught] == [
        "cadence reads activity records but none of the 1 records given is one: it scores "
        "without them (it receives only the kinds it reads)"
    ]
    assert result.value > 0


def test_run_scorer_gives_no_warning_when_every_kind_is_there_or_nothing_was_given() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run_scorer(CadenceScorer, [post(days_ago=1), activity(days_ago=2)])
        empty = run_scorer(CadenceScorer, [])
    assert empty.value == 0


def test_a_scorer_given_only_kinds_it_does_not_read_is_warned_for_each_of_its_kinds() -> None:
    with pytest.warns(MissingKindWarning) as caught:
        run_scorer(CadenceScorer, [repository(stars=3)])
    assert [str(w.message).split(" records")[0] for w in caught] == [
        "cadence reads post",
        "cadence reads activity",
    ]
