"""Schema-driven fuzzing (GQ-13): schemathesis generates valid and invalid operations from the
committed SDL; each runs against the in-process app with a real token. No 5xx, no unmasked or
code-less error, and every invalid operation is refused.

Generation is bounded (a few examples per operation) so the suite stays fast; schemathesis
only generates here, and the requests go through httpx on the app's own event loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode

from coop.consent import grants
from coop.jobs.scoring import ScoringFlow
from coop.vault import Vault
from tests.api.conftest import give_score
from tests.api.factories import grant_token, make_app, make_member, personal_token

SDL = Path(__file__).resolve().parents[2] / "schema" / "coop.graphql"
EXAMPLES = {GenerationMode.POSITIVE: 12, GenerationMode.NEGATIVE: 6}
KNOWN_CODES = {
    "GRAPHQL_PARSE_FAILED",
    "GRAPHQL_VALIDATION_FAILED",
    "BAD_USER_INPUT",
    "FORBIDDEN",
    "NOT_FOUND",
    "CONFLICT",
    "MAX_NODE_LIMIT_EXCEEDED",
}


def _collect(operation: Any, mode: GenerationMode, count: int) -> list[Any]:
    bodies: list[Any] = []

    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(operation.as_strategy(generation_mode=mode))
    def collect(case: Any) -> None:
        bodies.append(case.body)

    collect()
    return bodies


def generated_bodies() -> list[tuple[str, GenerationMode, Any]]:
    schema = schemathesis.graphql.from_file(SDL.read_text())
    found: list[tuple[str, GenerationMode, Any]] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode, count in EXAMPLES.items():
            found += [(operation.label, mode, b) for b in _collect(operation, mode, count)]
    return found


def check(label: str, mode: GenerationMode, body: Any, response: httpx.Response) -> None:
    where = f"{label} ({mode.value}): {body!r}"
    assert response.status_code < 500, where
    assert response.status_code == 200, where
    payload = response.json()
    for error in payload.get("errors") or []:
        code = error.get("extensions", {}).get("code")
        assert code in KNOWN_CODES, f"{where} -> {error}"
        assert error["message"] != "Unexpected error.", where
    if mode is GenerationMode.NEGATIVE and "(" in body:
        # (an operation without arguments has no invalid input: its "negative" is valid)
        assert payload.get("errors"), f"accepted negative data: {where}"


async def test_generated_operations_never_fail_the_server(
    client: httpx.AsyncClient, vault: Vault, flow: ScoringFlow
) -> None:
    member = await make_member(vault)
    await give_score(flow, member)
    scopes = ["profile", "score:reach", "score:reach:history", "score:cadence", "member:manage"]
    own = await personal_token(member, scopes)
    app_token = await grant_token(member, await make_app(vault), ["score:reach", "profile"])
    bodies = generated_bodies()
    assert len(bodies) > 50
    answered = 0
    for label, mode, body in bodies:
        for token in (own, app_token.access_token):
            response = await client.post(
                "/graphql", json={"query": body}, headers={"Authorization": f"Bearer {token}"}
            )
            check(label, mode, body, response)
            answered += response.status_code == 200
            await grants.resume_sharing(member_id=member.id)  # fuzzed pauses must not stick
    assert answered == 2 * len(bodies)
