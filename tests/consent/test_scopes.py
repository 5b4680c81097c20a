"""Scope parsing and plain-word descriptions."""

from __future__ import annotations

import pytest

from coop.consent.scopes import describe_scope, parse_scopes
from coop.errors import InvalidScopeError


def test_known_scopes_parse_and_deduplicate() -> None:
    assert parse_scopes("profile score:reach score:reach:history profile") == [
        "profile",
        "score:reach",
        "score:reach:history",
    ]


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "  ",
        "email",
        "score",
        "score:",
        "score:Reach",
        "score:1x",
        "score:a:b",
        "member:manage",
        "score:reach:atleast",
        "score:reach:atleast:",
        "score:reach:atleast:1e3",
        "score:reach:atleast:+5",
        "score:reach:atleast:NaN",
        "score:reach:atleast:007",
        "score:reach:atleast:5:6",
        "score:reach:band:5",
        "score:reach score:reach:band",
        "score:reach:band score:reach:atleast:5",
    ],
)
def test_unknown_scopes_are_invalid_scope(raw: str) -> None:
    with pytest.raises(InvalidScopeError) as caught:
        parse_scopes(raw)
    assert caught.value.code == "invalid_scope"


def test_member_manage_is_for_personal_tokens_only() -> None:
    assert parse_scopes("member:manage", personal=True) == ["member:manage"]


def test_unknown_scorer_is_refused_when_a_registry_is_present() -> None:
    known = ["reach", "cadence"]
    assert parse_scopes("score:cadence", known_scorers=known) == ["score:cadence"]
    with pytest.raises(InvalidScopeError):
        parse_scopes("score:klout", known_scorers=known)


def test_scopes_are_described_in_plain_words() -> None:
    assert describe_scope("score:reach") == "your Reach score: the exact value and its explanation"
    assert describe_scope("score:reach:band", band_example="50\u201360") == (
        "your Reach score: a range such as 50\u201360"
    )
    assert describe_scope("score:reach:atleast:60") == (
        "your Reach score: only whether it is at least 60"
    )
    assert describe_scope("score:reach:history") == "the history of your Reach score"
    assert "handle" in describe_scope("profile")


def test_levelled_scopes_parse_and_keep_the_threshold_as_written() -> None:
    assert parse_scopes("score:reach:band score:cadence:atleast:0.50 profile") == [
        "score:reach:band",
        "score:cadence:atleast:0.50",
        "profile",
    ]
    assert parse_scopes("score:reach:atleast:-2.5") == ["score:reach:atleast:-2.5"]


def test_a_threshold_must_lie_inside_the_scorers_range() -> None:
    ranges = {"reach": (0.0, 100.0)}
    assert parse_scopes("score:reach:atleast:100", ranges=ranges) == ["score:reach:atleast:100"]
    assert parse_scopes("score:reach:atleast:0", ranges=ranges) == ["score:reach:atleast:0"]
    for outside in ("100.5", "-1", "1000"):
        with pytest.raises(InvalidScopeError):
            parse_scopes(f"score:reach:atleast:{outside}", ranges=ranges)


def test_each_grants_levels_are_named_for_the_export() -> None:
    from coop.consent.disclosure import levels_of

    scopes = ["profile", "score:reach", "score:reach:history", "score:cadence:atleast:0.5"]
    assert levels_of(scopes) == {"reach": "exact", "cadence": "atleast:0.5"}
    assert levels_of(["score:reach:band"]) == {"reach": "band"}
