"""The reach scorer, tested the way plugin authors test theirs: with coop.testing only."""

from __future__ import annotations

import math

import pytest
from coop_score_reach import HALF_LIFE_DAYS, ReachScorer

from coop.testing import (
    NOW,
    assert_deterministic,
    assert_explains,
    check_scorer,
    post,
    record,
    repository,
    run_scorer,
    steady_member,
)

# Most tests give one kind on purpose (posts, or repositories): the other kind's absence is
# what they mean, so coop.testing's warning about it is expected here.
pytestmark = pytest.mark.filterwarnings("ignore::coop.testing.MissingKindWarning")


def test_declares_a_valid_contract() -> None:
    meta = check_scorer(ReachScorer)
    assert meta.name == "reach"
    assert meta.reads == ("post", "repository")


def test_no_records_scores_zero_and_says_so() -> None:
    result = run_scorer(ReachScorer, [])
    assert result.value == 0
    assert result.reasons


def test_a_reaction_loses_half_its_weight_after_one_half_life() -> None:
    fresh = run_scorer(ReachScorer, [post(days_ago=0, favourites=100)])
    old = run_scorer(ReachScorer, [post(days_ago=HALF_LIFE_DAYS, favourites=200)])
    assert old.value == pytest.approx(fresh.value)


def test_value_is_log_scaled_to_100() -> None:
    result = run_scorer(ReachScorer, [post(favourites=100)])
    assert result.value == pytest.approx(100 * math.log10(101) / math.log10(10_001), abs=1e-6)
    capped = run_scorer(ReachScorer, [repository(stars=1_000_000)])
    assert capped.value == 100


def test_boosts_weigh_more_than_favourites() -> None:
    boosted = run_scorer(ReachScorer, [post(reblogs=10)])
    liked = run_scorer(ReachScorer, [post(favourites=10)])
    assert boosted.value > liked.value


def test_explanation_lists_top_moments_and_decay() -> None:
    records = steady_member()
    result = run_scorer(ReachScorer, records)
    assert_explains(result, records, min_contributions=10, mentions=["decayed"])
    amounts = [c.amount for c in result.contributions]
    assert amounts == sorted(amounts, reverse=True)
    assert sum(amounts) <= result.value + 1e-6


def test_records_older_than_a_year_are_reported_as_aged_out() -> None:
    result = run_scorer(ReachScorer, [post(days_ago=400, favourites=5), post(favourites=1)])
    assert any("1 older records no longer count" in r for r in result.reasons)


def test_same_input_gives_the_same_result() -> None:
    assert_deterministic(ReachScorer, steady_member(), NOW)


def test_reactions_count_the_same_on_every_network_and_reasons_name_it() -> None:
    bluesky = post(favourites=10, reblogs=2, network="bluesky")
    mastodon = post(favourites=10, reblogs=2, network="mastodon")
    both = run_scorer(ReachScorer, [bluesky, mastodon])

    alone = run_scorer(ReachScorer, [bluesky]).value
    assert run_scorer(ReachScorer, [mastodon]).value == pytest.approx(alone)
    reasons = {c.ref: c.reason for c in both.contributions}
    assert reasons[bluesky.ref].startswith("post on Bluesky of ")
    assert reasons[mastodon.ref].startswith("post on Mastodon of ")
    assert "By network: Bluesky 50%, Mastodon 50%." in both.reasons


def test_bluesky_quotes_weigh_like_boosts() -> None:
    quotes = run_scorer(ReachScorer, [record("post", counts={"quotes": 5}, network="bluesky")])
    boosts = run_scorer(ReachScorer, [post(reblogs=5)])
    assert quotes.value == pytest.approx(boosts.value)


def test_one_reaction_reads_in_the_singular() -> None:
    result = run_scorer(ReachScorer, [post(replies=1, favourites=2)])
    reasons = " ".join(c.reason for c in result.contributions)
    assert "1 reply" in reasons and "2 favourites" in reasons
    assert "1 replies" not in reasons
