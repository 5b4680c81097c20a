"""Why there is no score, and how the latest run went, in the member's words (issue 16)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from coop.scoring.absence import Facts, job_failed_words, latest_run, why_no_score

ENABLED = Facts(
    title="Reach",
    installed=True,
    scoring_available=True,
    enabled=True,
    ever_disabled=False,
    last_status="",
    last_run_at=None,
    needs_consent=False,
    kept=False,
    has_records=True,
    reads_words="posts you published: dates only",
)
CODES = ("plugin_error", "invalid_plugin_output", "sandbox_violation", "output_too_large")


@pytest.mark.parametrize(
    ("changes", "code", "words"),
    [
        ({"enabled": False}, "not_enabled", "You have not enabled Reach."),
        ({"enabled": False, "ever_disabled": True}, "disabled", "You turned Reach off"),
        ({"installed": False}, "not_installed", "no longer installed"),
        ({"scoring_available": False}, "unavailable", "Scoring is not available"),
        ({"needs_consent": True}, "needs_consent", "reads more of your data than you agreed"),
        ({"kept": True}, "kept", "You chose to keep an earlier version's score"),
        ({"last_status": "queued"}, "computing", "Your Reach score is being computed."),
        ({"last_status": "plugin_timeout"}, "failed", "took longer than this cooperative allows"),
        ({"last_status": "interrupted"}, "interrupted", "coop restarted before it could compute"),
        ({"last_status": "job_failed"}, "failed", "an error of its own before it could compute"),
        ({"has_records": False}, "no_records", "reads posts you published: dates only, and coop"),
        ({}, "not_run", "Reach has not run on your data yet."),
    ],
)
def test_each_state_has_one_plain_reason(changes: dict[str, object], code: str, words: str) -> None:
    reason = why_no_score(replace(ENABLED, **changes))  # type: ignore[arg-type]
    assert reason.code == code
    assert words in reason.text
    assert reason.computing == (code == "computing")


@pytest.mark.parametrize("status", CODES)
def test_a_failure_names_no_internals(status: str) -> None:
    reason = why_no_score(replace(ENABLED, last_status=status))
    assert reason.code == "failed"
    assert "Reach could not compute your score." in reason.text
    assert "the cooperative's operator has been told" in reason.text
    assert status not in reason.text and "_" not in reason.text


def test_the_latest_run_beside_a_score() -> None:
    assert latest_run(title="Reach", last_status="queued", value=4.0).computing
    assert latest_run(title="Reach", last_status="stored", value=4.0).text == (
        "Recomputed: your Reach score is 4.0."
    )
    assert "unchanged at 4.0" in latest_run(title="Reach", last_status="unchanged", value=4.0).text
    failed = latest_run(title="Reach", last_status="plugin_error", value=4.0)
    assert failed.code == "failed" and failed.text.endswith("Your previous score stays.")
    assert latest_run(title="Reach", last_status="needs_consent", value=4.0).code == ""


def test_a_run_a_restart_cut_short_is_not_a_failure() -> None:
    """Interrupted (coop.jobs.recovery) is said calmly, with its own code (its own style),
    and names what the member can do."""
    reason = why_no_score(replace(ENABLED, last_status="interrupted"))
    assert (reason.code, reason.act) == ("interrupted", "recompute")
    assert "Nothing is wrong with your data or the scorer" in reason.text
    assert "fault" not in reason.text
    beside = latest_run(title="Reach", last_status="interrupted", value=4.0)
    assert beside.code == "interrupted" and beside.text.endswith("Your previous score stays.")
    assert beside.recompute


def test_a_stopped_job_is_one_sentence_for_one_or_several_scores() -> None:
    one = job_failed_words(["Reach"])
    assert one.startswith(
        "coop ran into an error of its own before it could compute your Reach score."
    )
    assert "not caused by anything you did" in one and "Recompute" in one
    assert "your Cadence and Reach scores." in job_failed_words(["Cadence", "Reach"])
    assert "your A, B and C scores." in job_failed_words(["A", "B", "C"])
    beside = latest_run(title="Reach", last_status="job_failed", value=4.0)
    assert beside.code == "failed" and not beside.computing and beside.recompute
    assert not latest_run(title="Reach", last_status="plugin_error", value=4.0).recompute
    assert beside.text == one + " Your previous score stays."
