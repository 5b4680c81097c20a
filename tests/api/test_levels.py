"""Disclosure levels through the API: a band or a threshold answer, never the value."""

from __future__ import annotations

import itertools

import httpx
from hypothesis import given
from hypothesis import strategies as st

from coop.consent.disclosure import Reveals, gate
from coop.jobs.scoring import ScoringFlow
from coop.scoring.bands import band_of, bands_of
from coop.vault import Vault
from tests.api.conftest import give_score
from tests.api.factories import codes, gql, grant_token, make_app, make_member

LEVELS = """{ viewer { score(scorer: "reach") { value band { low high } atLeast threshold
  explanation { reasons } } } }"""
HISTORY = """{ viewer { scoreHistory(scorer: "reach", first: 5) { edges { node { value } } } } }"""


async def _answer(client: httpx.AsyncClient, vault: Vault, flow: ScoringFlow, scopes: list[str]):
    member = await make_member(vault)
    await give_score(flow, member)
    token = await grant_token(member, await make_app(vault), scopes)
    return (await gql(client, token.access_token, LEVELS)).json()


async def test_band_level_answers_the_band_and_refuses_the_value(
    client: httpx.AsyncClient, vault: Vault, flow: ScoringFlow
) -> None:
    body = await _answer(client, vault, flow, ["score:reach:band"])
    score = body["data"]["viewer"]["score"]
    low, high = score["band"]["low"], score["band"]["high"]
    assert high - low == 10.0 and low % 10 == 0  # reach declares no bands: ten of 0..100
    assert score["value"] is None and score["explanation"] is None
    assert score["atLeast"] is None and score["threshold"] is None
    refused = {(e["path"][-1], e["extensions"]["required_scope"]) for e in body["errors"]}
    assert refused == {("value", "score:reach"), ("explanation", "score:reach")}
    assert set(codes(body)) == {"FORBIDDEN"}


async def test_threshold_level_answers_one_bit(
    client: httpx.AsyncClient, vault: Vault, flow: ScoringFlow
) -> None:
    exact = await _answer(client, vault, flow, ["score:reach"])
    value = exact["data"]["viewer"]["score"]["value"]
    for threshold in ("0", "99.5", str(value)):
        body = await _answer(client, vault, flow, [f"score:reach:atleast:{threshold}"])
        score = body["data"]["viewer"]["score"]
        assert score["atLeast"] is (value >= float(threshold))
        assert score["threshold"] == float(threshold)
        assert score["value"] is None and score["band"] is None and score["explanation"] is None
        refused = {(e["path"][-1], e["extensions"]["required_scope"]) for e in body["errors"]}
        assert refused == {
            ("value", "score:reach"),
            ("band", "score:reach:band"),
            ("explanation", "score:reach"),
        }


async def test_history_needs_the_exact_level_too(
    client: httpx.AsyncClient, vault: Vault, flow: ScoringFlow
) -> None:
    member = await make_member(vault)
    await give_score(flow, member)
    app = await make_app(vault)
    for scopes in (["score:reach:history"], ["score:reach:band", "score:reach:history"]):
        token = await grant_token(member, app, scopes)
        body = (await gql(client, token.access_token, HISTORY)).json()
        assert body["data"]["viewer"]["scoreHistory"] is None
        assert codes(body) == ["NOT_FOUND"]
    token = await grant_token(member, app, ["score:reach", "score:reach:history"])
    body = (await gql(client, token.access_token, HISTORY)).json()
    assert body["data"]["viewer"]["scoreHistory"]["edges"]


async def test_the_access_log_records_the_level_read(
    client: httpx.AsyncClient, vault: Vault, flow: ScoringFlow
) -> None:
    from coop.consent.models import AccessLogEntry

    member = await make_member(vault)
    await give_score(flow, member)
    token = await grant_token(member, await make_app(vault), ["score:reach:atleast:60"])
    await gql(client, token.access_token, '{ viewer { score(scorer: "reach") { atLeast } } }')
    scopes = await AccessLogEntry.filter(member_id=member.id).values_list("scope", flat=True)
    assert scopes == ["score:reach:atleast:60"]


# -- bands, as a property ---------------------------------------------------------------------

RANGES = st.tuples(
    st.floats(-1000, 1000, allow_nan=False), st.floats(0.001, 1000, allow_nan=False)
).map(lambda t: (t[0], t[0] + t[1]))


@given(RANGES, st.data())
def test_a_band_answer_is_the_same_for_every_value_inside_the_band(
    bounds: tuple[float, float], data: st.DataObject
) -> None:
    edges = bands_of(bounds, None)
    i = data.draw(st.integers(0, len(edges) - 2))
    low, high = edges[i], edges[i + 1]
    top = i == len(edges) - 2
    inside = data.draw(
        st.lists(
            st.floats(low, high, exclude_max=not top, allow_nan=False), min_size=2, max_size=20
        )
    )
    assert {band_of(v, edges) for v in inside} == {(low, high)}
    assert band_of(bounds[0], edges)[0] == bounds[0] and band_of(bounds[1], edges)[1] == bounds[1]


@given(
    st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=8, unique=True),
    st.floats(0, 100, allow_nan=False),
)
def test_declared_bands_hold_every_value_in_exactly_one_band(
    inner: list[float], value: float
) -> None:
    edges = bands_of((0.0, 100.0), [0.0, *sorted(set(inner) - {0.0, 100.0}), 100.0])
    low, high = band_of(value, edges)
    assert low <= value <= high and (value < high or high == 100.0)
    assert (low, high) in set(itertools.pairwise(edges))


def test_the_gate_refuses_more_than_the_level_whatever_the_field() -> None:
    band, atleast = ["score:reach:band"], ["score:reach:atleast:5"]
    assert gate(band, "reach", Reveals.VALUE).required_scope == "score:reach"
    assert gate(band, "reach", Reveals.BAND).allowed
    assert not gate(band, "reach", Reveals.THRESHOLD).allowed
    assert gate(atleast, "reach", Reveals.BAND).required_scope == "score:reach:band"
    assert gate(atleast, "reach", Reveals.THRESHOLD).allowed
    assert gate(["score:cadence"], "reach", Reveals.NOTHING).required_scope == "score:reach"


# Fields of Score that tell nothing about the value. Any other field (a new one included)
# must carry the disclosure gate, or this test fails: a band or a threshold answer must never
# carry the value, or anything it can be computed from, in another field.
REVEALS_NOTHING = {"id", "range", "scorer", "computedAt", "version", "stale"}


def test_every_score_field_goes_through_the_disclosure_gate() -> None:
    from coop.api.disclosed import Disclosed
    from coop.api.schema import schema

    names = schema._schema.type_map["Score"].fields  # type: ignore[attr-defined]
    ungated = set()
    for name in names:
        field = schema.get_field_for_type(name, "Score")
        assert field is not None
        if not any(isinstance(e, Disclosed) for e in field.extensions):
            ungated.add(name)
    assert ungated <= REVEALS_NOTHING, ungated - REVEALS_NOTHING
    assert "value" not in ungated and "explanation" not in ungated
