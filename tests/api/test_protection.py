"""Rate limits per (app, member) (GQ-12), masked unexpected errors (GQ-11), and DataLoaders:
round trips do not grow with the number of scores asked for."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest

from coop import db
from coop.api.schema import schema
from coop.api.services import ServiceBackend
from coop.api.view import GraphQLEndpoint
from coop.config import Settings
from coop.consent import ratelimit
from coop.consent.ratelimit import MemoryLimiter
from coop.jobs.scoring import ScoringFlow
from coop.vault import Vault
from tests.api.conftest import give_score
from tests.api.factories import codes, gql, grant_token, make_app, make_member, personal_token


@pytest.fixture
async def limited_client(settings: Settings, db: str) -> AsyncIterator[httpx.AsyncClient]:
    from coop.app import build_app

    app = build_app(dataclasses.replace(settings, rate_limit=3), manage_db=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
        yield c


async def test_flooding_app_gets_429_while_another_app_is_served(
    limited_client: httpx.AsyncClient, vault: Vault
) -> None:
    member = await make_member(vault)
    x = await grant_token(member, await make_app(vault, "X"), ["score:reach"])
    y = await grant_token(member, await make_app(vault, "Y"), ["score:reach"])
    remaining = [
        (await gql(limited_client, x.access_token, "{ viewer { id } }")).headers[
            "x-ratelimit-remaining"
        ]
        for _ in range(3)
    ]
    assert remaining == ["2", "1", "0"]
    refused = await gql(limited_client, x.access_token, "{ viewer { id } }")
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["x-ratelimit-limit"] == "3"
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert int(refused.headers["x-ratelimit-reset"]) > 0
    assert codes(refused.json()) == ["RATE_LIMITED"]
    served = await gql(limited_client, y.access_token, "{ viewer { id } }")
    assert served.status_code == 200


def test_bucket_refills_with_time() -> None:
    now = [0.0]
    limiter = MemoryLimiter(60, now=lambda: now[0])
    for _ in range(60):
        assert limiter.hit_now("k").allowed
    refused = limiter.hit_now("k")
    assert not refused.allowed and refused.retry_after == 1
    now[0] += 1.0
    assert limiter.hit_now("k").allowed


class BrokenBackend(ServiceBackend):
    """A real backend whose catalogue fails like a bug would, with SQL in the message."""

    async def catalogue(self) -> Sequence[Any]:
        raise RuntimeError("SELECT wrapped FROM vault_member_key WHERE secret='hunter2'")


async def test_unexpected_errors_are_masked_with_the_request_id(
    app: Any, vault: Vault, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint = GraphQLEndpoint(schema, BrokenBackend(app.state.runtime), rate_limit=0)
    member = await make_member(vault)
    token = await personal_token(member, ["profile"])
    transport = httpx.ASGITransport(app=endpoint)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
        with caplog.at_level(logging.DEBUG, logger="coop.api"):
            response = await c.post(
                "/graphql",
                json={"query": "{ scorers { name } }"},
                headers={"Authorization": f"Bearer {token}"},
            )
            bad = await c.post(
                "/graphql",
                json={"query": "{ nope }"},
                headers={"Authorization": f"Bearer {token}"},
            )
    error = response.json()["errors"][0]
    assert error["message"] == "Unexpected error."
    assert error["extensions"]["code"] == "INTERNAL"
    assert error["extensions"]["request_id"]
    assert "SELECT" not in response.text and "hunter2" not in response.text
    assert codes(bad.json()) == ["GRAPHQL_VALIDATION_FAILED"]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "RuntimeError" in errors[0].getMessage()


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts every database read: the hot path's statements and tortoise's selects (not the
    access log's shared group-commit inserts: tests/consent/test_accesslog.py covers those)."""
    seen: list[str] = []
    original_rows = db.read_rows

    async def counted_rows(sql: str, params: Sequence[object]) -> list[db.Row]:
        if _clients()[0].capabilities.dialect == "sqlite":  # (PostgreSQL: counted below)
            seen.append(sql.split()[1])
        return await original_rows(sql, params)

    monkeypatch.setattr(db, "read_rows", counted_rows)
    for name in ("execute_query", "execute_query_dict"):
        for cls in {type(c) for c in _clients()}:
            original = getattr(cls, name)

            async def counted(self: Any, *a: Any, _o: Any = original, **k: Any) -> Any:
                # The access log's writes are shared between requests (group commit).
                if not (a and str(a[0]).lstrip().startswith(ACCESS_LOG_WRITE)):
                    seen.append(str(a[0]).split()[0] if a else "?")
                return await _o(self, *a, **k)

            monkeypatch.setattr(cls, name, counted)
    return seen


ACCESS_LOG_WRITE = "INSERT INTO access_log "


def _clients() -> list[Any]:
    from tortoise import connections

    return [connections.get("default")]


async def test_round_trips_do_not_grow_with_the_number_of_scores(
    client: httpx.AsyncClient, vault: Vault, flow: ScoringFlow, round_trips: list[str]
) -> None:
    member = await make_member(vault)
    await give_score(flow, member, "reach")
    await give_score(flow, member, "cadence")
    token = await grant_token(member, await make_app(vault), ["score:reach", "score:cadence"])
    field = "value explanation { reasons contributions { amount } }"
    one = f'{{ viewer {{ score(scorer: "reach") {{ {field} }} }} }}'
    many = (
        f'{{ viewer {{ a: score(scorer: "reach") {{ {field} }} '
        f'b: score(scorer: "cadence") {{ {field} }} c: score(scorer: "reach") {{ value }} '
        f"scores {{ {field} }} }} }}"
    )
    await gql(client, token.access_token, one)  # warm caches (scorer metadata)
    round_trips.clear()
    body = (await gql(client, token.access_token, one)).json()
    assert "errors" not in body
    single = len(round_trips)
    round_trips.clear()
    body = (await gql(client, token.access_token, many)).json()
    assert "errors" not in body and len(body["data"]["viewer"]["scores"]) == 2
    assert len(round_trips) == single <= 3


async def test_the_shared_rate_limit_costs_an_authorized_read_no_round_trip(
    app: Any, vault: Vault, flow: ScoringFlow, engine: str, round_trips: list[str]
) -> None:
    """With the limit on, an authorized read sends exactly the statements it sends with the
    limit off: on PostgreSQL the bearer statement charges the shared bucket itself (on
    SQLite the bucket is in memory)."""
    member = await make_member(vault)
    await give_score(flow, member, "reach")
    token = (await grant_token(member, await make_app(vault), ["score:reach"])).access_token
    sent: dict[int, list[str]] = {}
    for limit in (0, 1000):
        limiter = ratelimit.limiter_for(limit=limit, shared=engine == "postgres", redis_url=None)
        backend = ServiceBackend(app.state.runtime)
        endpoint = GraphQLEndpoint(schema, backend, rate_limit=limit, limiter=limiter)
        transport = httpx.ASGITransport(app=endpoint)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
            await gql(c, token, '{ viewer { score(scorer: "reach") { value } } }')  # warm
            round_trips.clear()
            read = await gql(c, token, '{ viewer { score(scorer: "reach") { value } } }')
        assert read.json()["data"]["viewer"]["score"]["value"] is not None
        assert ("x-ratelimit-remaining" in read.headers) == (limit > 0)
        sent[limit] = list(round_trips)
    assert len(sent[1000]) == len(sent[0]) >= 1, sent
