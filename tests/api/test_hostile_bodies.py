"""Deeply nested JSON bodies (issue 12 part 3): a 400 with a code and a message, never a 500.

Generated: arrays, objects and mixtures, at the top level and inside `variables`, from one
level past the bound to 100,000 levels (the observed RecursionError).
"""

from __future__ import annotations

import json

import httpx
import pytest

from coop.http import jsonbody
from coop.vault import Vault
from tests.api.factories import make_member, personal_token

DEPTHS = [jsonbody.MAX_DEPTH + 1, 500, 999, 1001, 100_000]


def nested(depth: int, kind: str) -> str:
    if kind == "array":
        return "[" * depth + "]" * depth
    if kind == "object":
        return '{"a":' * depth + "1" + "}" * depth
    return '[{"a":' * (depth // 2) + "[1]" + "}]" * (depth // 2)


def bodies(depth: int, kind: str) -> dict[str, str]:
    inner = nested(depth, kind)
    return {
        "top": inner,
        "variables": '{"query": "{ viewer { id } }", "variables": {"x": ' + inner + "}}",
        "extensions": '{"query": "{ viewer { id } }", "extensions": ' + inner + "}",
    }


@pytest.mark.parametrize("where", ["top", "variables", "extensions"])
@pytest.mark.parametrize("kind", ["array", "object", "mixed"])
@pytest.mark.parametrize("depth", DEPTHS)
async def test_a_deeply_nested_body_is_a_400_with_a_message(
    client: httpx.AsyncClient, vault: Vault, depth: int, kind: str, where: str
) -> None:
    token = await personal_token(await make_member(vault), ["profile"])
    response = await client.post(
        "/graphql",
        content=bodies(depth, kind)[where],
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    # Past 10,000 arrays and objects the body is refused for that before its depth is read.
    refusal = jsonbody.JsonTooLarge() if depth > jsonbody.MAX_CONTAINERS else jsonbody.JsonTooDeep()
    assert error["message"] == refusal.message


@pytest.mark.parametrize("kind", ["array", "object", "mixed"])
def test_the_bound_itself_is_accepted_and_one_more_is_not(kind: str) -> None:
    depth = jsonbody.MAX_DEPTH if kind != "mixed" else jsonbody.MAX_DEPTH - 1
    assert jsonbody.loads(nested(depth, kind)) == json.loads(nested(depth, kind))
    with pytest.raises(jsonbody.JsonTooDeep):
        jsonbody.loads(nested(jsonbody.MAX_DEPTH + 2, kind))


def test_many_shallow_brackets_are_fine() -> None:
    wide = "[" + ",".join(["[[1]]"] * 4_000) + "]"
    assert len(jsonbody.loads(wide)) == 4_000


@pytest.mark.parametrize(
    "body",
    [
        "[" + ",".join(["[[1]]"] * 170_000) + "]",
        '{"query": "{ viewer { id } }", "variables": {"x": [' + ",".join(["{}"] * 20_000) + "]}}",
        "[" + ",".join(["1"] * 200_000) + "]",
    ],
    ids=["tiny-arrays", "objects-in-variables", "numbers"],
)
def test_a_body_crowded_with_values_is_refused_before_parsing(body: str) -> None:
    with pytest.raises(jsonbody.JsonTooLarge):
        jsonbody.loads(body)


def test_brackets_inside_strings_do_not_count() -> None:
    text = json.dumps({"query": "[" * 5000 + '"\\' + "{" * 5000})
    assert jsonbody.loads(text) == json.loads(text)
