"""The cadence scorer, tested with coop.testing only."""

from __future__ import annotations

import pytest
from coop_score_cadence import WEEKS, CadenceScorer

from coop.testing import (
    NOW,
    activity,
    assert_deterministic,
    assert_explains,
    check_scorer,
    post,
    run_scorer,
    steady_member,
)

# Most tests give one kind on purpose (posts, or repositories): the other kind's absence is
# what they mean, so coop.testing's warning about it is expected here.
pytestmark = pytest.mark.filterwarnings("ignore::coop.testing.MissingKindWarning")


def test_declares_a_valid_contract() -> None:
    meta = check_scorer(CadenceScorer)
    assert meta.name == "cadence"
    assert meta.reads == ("post", "activity")


def test_posting_every_week_scores_full_marks() -> None:
    result = run_scorer(CadenceScorer, steady_member(per_week=3))
    assert result.value == 100
    assert len(result.breakdown) == WEEKS


def test_a_burst_scores_lower_than_steady_activity() -> None:
    burst = [post(days_ago=3 + i / 100) for i in range(80)]
    steady = [post(days_ago=week * 7 + 1) for week in range(WEEKS)]
    assert run_scorer(CadenceScorer, burst).value < 10
    assert run_scorer(CadenceScorer, steady).value == 100


def test_activity_counts_and_old_records_do_not() -> None:
    assert run_scorer(CadenceScorer, [activity(days_ago=1)]).value > 0
    assert run_scorer(CadenceScorer, [post(days_ago=WEEKS * 7 + 1)]).value == 0


def test_explanation_has_one_reason_per_week() -> None:
    records = steady_member(per_week=1)
    result = run_scorer(CadenceScorer, records)
    assert_explains(result, records, min_contributions=WEEKS, mentions=["12 of the last 12"])
    assert sum(1 for r in result.reasons if r.startswith("Week of")) == WEEKS


def test_same_input_gives_the_same_result() -> None:
    assert_deterministic(CadenceScorer, steady_member(), NOW)


def test_posts_and_activity_count_on_every_network_and_weeks_name_them() -> None:
    records = [
        post(days_ago=1, network="bluesky"),
        post(days_ago=2, network="facebook"),
        activity(days_ago=3, network="linkedin"),
        post(days_ago=4, network="bluesky"),
    ]

    result = run_scorer(CadenceScorer, records)

    [week] = [c for c in result.contributions]
    assert "4 published (Bluesky 2, Facebook 1, LinkedIn 1)" in week.reason
    assert any(
        r.endswith("4 published (Bluesky 2, Facebook 1, LinkedIn 1)") for r in result.reasons
    )


def test_reads_only_dates_and_networks_and_scores_the_same_without_counts() -> None:
    meta = check_scorer(CadenceScorer)
    assert dict(meta.fields) == {
        "post": ("occurred_at", "network"),
        "activity": ("occurred_at", "network"),
    }
    with_counts = [post(days_ago=week * 7 + 1, favourites=50) for week in range(WEEKS)]
    without = [post(days_ago=week * 7 + 1) for week in range(WEEKS)]
    given, plain = run_scorer(CadenceScorer, with_counts), run_scorer(CadenceScorer, without)
    assert (given.value, given.reasons, given.breakdown) == (
        plain.value,
        plain.reasons,
        plain.breakdown,
    )
