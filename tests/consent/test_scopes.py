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
    ["", "  ", "email", "score", "score:", "score:Reach", "score:1x", "score:a:b", "member:manage"],
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
    assert describe_scope("score:reach") == "your Reach score and its explanation"
    assert describe_scope("score:reach:history") == "the history of your Reach score"
    assert "handle" in describe_scope("profile")
