"""PL-06: the host's output validation, rule by rule (shared with coop.testing)."""

from __future__ import annotations

import json

import pytest

from coop.scoring import spec
from coop.scoring.validate import (
    ContractViolation,
    OutputViolation,
    ScorerMeta,
    check_contract,
    parse_output,
)

META = ScorerMeta("s", "1", "S", "d", ("post",), (0.0, 10.0), False, "")
REFS = {"a", "b"}


def parse(data: object) -> spec.ScoreResult:
    return parse_output(json.dumps(data), meta=META, refs=REFS)


def rejected(data: object, code: str = "invalid_plugin_output") -> str:
    with pytest.raises(OutputViolation) as caught:
        parse(data)
    assert caught.value.code == code
    return str(caught.value)


def test_a_valid_output_is_rebuilt_as_a_score_result() -> None:
    result = parse(
        {
            "value": 3,
            "contributions": [{"amount": 1.5, "reason": "r", "ref": "a"}],
            "reasons": ["why"],
            "breakdown": {"w1": 2},
        }
    )
    assert result == spec.ScoreResult(
        3.0, (spec.Contribution(1.5, "r", "a"),), ("why",), {"w1": 2.0}
    )


@pytest.mark.parametrize(
    "data",
    [
        [],
        {"value": "3"},
        {"value": True},
        {"value": 11},
        {"value": -0.1},
        {"value": 1, "member_id": "someone"},
        {"value": 1, "contributions": [{"amount": 1, "reason": "r", "ref": "zzz"}]},
        {"value": 1, "contributions": [{"amount": 1, "reason": "r", "extra": 1}]},
        {"value": 1, "contributions": [{"amount": "1", "reason": "r"}]},
        {"value": 1, "contributions": [{"amount": 1, "reason": "r"}] * 51},
        {"value": 1, "reasons": ["x"] * 21},
        {"value": 1, "reasons": ["x" * 281]},
        {"value": 1, "reasons": [3]},
        {"value": 1, "breakdown": {"k": "v"}},
        {"value": 1, "breakdown": {str(i): 1 for i in range(101)}},
    ],
)
def test_invalid_outputs_are_rejected(data: object) -> None:
    rejected(data)


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_rejected(token: str) -> None:
    with pytest.raises(OutputViolation):
        parse_output('{"value": ' + token + "}", meta=META, refs=REFS)


def test_output_over_one_mebibyte_is_too_large() -> None:
    rejected({"value": 1, "reasons": ["x" * (1024 * 1024)]}, code="output_too_large")


def test_garbage_is_not_json() -> None:
    with pytest.raises(OutputViolation, match="not JSON"):
        parse_output(b"\xff\xfe garbage", meta=META, refs=REFS)


class Good:
    api_version = spec.API_VERSION
    name = "good"
    version = "1"
    title = "Good"
    description = "d"
    reads = ("post",)
    range = (0, 1)
    needs_text = False
    homepage = ""

    def score(self, records: object, now: object) -> spec.ScoreResult:
        return spec.ScoreResult(0)


@pytest.mark.parametrize(
    ("attr", "value", "message"),
    [
        ("api_version", 2, "api_version"),
        ("name", "Bad Name", "name"),
        ("version", "", "version"),
        ("reads", (), "reads"),
        ("reads", ("dms",), "unknown kinds"),
        ("range", (1, 0), "range"),
        ("range", (0, float("nan")), "range"),
        ("needs_text", "yes", "needs_text"),
        ("score", None, "score"),
    ],
)
def test_contract_violations_name_the_member(attr: str, value: object, message: str) -> None:
    scorer = type("Bad", (Good,), {attr: value})()
    with pytest.raises(ContractViolation, match=message):
        check_contract(scorer)


def test_a_valid_declaration_gives_its_metadata() -> None:
    meta = check_contract(Good())
    assert meta.to_json() == ScorerMeta.from_json(meta.to_json()).to_json()
    assert meta.range == (0.0, 1.0)
