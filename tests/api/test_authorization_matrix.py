"""The authorization matrix (GQ-15): Hypothesis generates sequences of grants (scope subsets
with every disclosure level of each score: exact, band, at least N; two lifetimes),
revocations, pauses and resumes (of all sharing and of one grant), apps changing their terms
and members agreeing to them, clock jumps past token and grant expiry, scorer disabling and
account deletion, interleaved with queries by every app for every member. After every query,
what the API disclosed must equal a small pure-Python oracle's answer: data is visible if
and only if the oracle allows it, and every score field (directly, under aliases, through
fragments, in explanations and history) reveals exactly what the granted level allows; each
field above it is refused with the scope it would need. The one bearer decision
(`consent.resolve_bearer`, which the API calls) is held to the oracle directly as well: who
it lets in, with which scopes and which of the member's scores.

Every grant state is a step here: a new one goes into `steps`, `Token`/`Oracle.allowed` and
`replay` (CONTRIBUTING.md, "Adding a grant state").

Hypothesis generates the sequences (the system under test is async and lives on the test's
event loop, so the steps are replayed here rather than inside a state machine); a failure
prints the whole sequence and the step where the API and the oracle disagreed.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import httpx
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from coop.apps import service as apps
from coop.apps.terms import validate_terms
from coop.consent import grants
from coop.consent import service as consent
from coop.errors import InvalidInputError
from coop.jobs.scoring import ScoringFlow
from coop.portability import erase
from coop.scoring import service as scoring
from coop.scoring.bands import band_of, bands_of
from coop.types import clock
from coop.vault import Vault
from tests.api.conftest import give_score
from tests.api.factories import grant_token, make_app, make_member

MEMBERS, APPS = 3, 3
# One level per score (or none), profile or not: every combination.
LEVEL_CHOICES = {
    "reach": [
        (),
        ("score:reach", "score:reach:history"),
        ("score:reach:band",),
        ("score:reach:band", "score:reach:history"),
        ("score:reach:atleast:40",),
    ],
    "cadence": [(), ("score:cadence",), ("score:cadence:band",), ("score:cadence:atleast:0.5",)],
}
SCOPE_SETS = [
    frozenset(profile + reach + cadence)
    for profile, reach, cadence in itertools.product(
        [(), ("profile",)], LEVEL_CHOICES["reach"], LEVEL_CHOICES["cadence"]
    )
    if profile + reach + cadence
]
# member -> scorers with a score at the start
START_SCORES = {0: {"reach", "cadence"}, 1: {"reach"}, 2: set()}
TOKEN_SECONDS, LIFETIMES = 3600, {"1d": 86_400, "30d": 30 * 86_400}
LEVEL_FIELDS = "value band { low high } atLeast threshold explanation { reasons }"
QUERY = (
    """{ viewer { handle r: score(scorer: "reach") { """
    + LEVEL_FIELDS
    + """ }
  c: score(scorer: "cadence") { ...Levels } scores { scorer { name } ...Levels x: value }
  h: scoreHistory(scorer: "reach", first: 5) { edges { node { value delta } } } } }
fragment Levels on Score { x: value ... on Score { """
    + LEVEL_FIELDS
    + " } }"
)
# The same two reads in a document of the planned shape (coop.api.plans): every answer of
# the compiled path is held to the oracle too.
PLANNED = """{ viewer { r: score(scorer: "reach") { value band { low high } atLeast threshold }
  c: score(scorer: "cadence") { scorer { name } x: value threshold } } }"""

member_ix = st.integers(0, MEMBERS - 1)
app_ix = st.integers(0, APPS - 1)
steps = st.one_of(
    st.tuples(
        st.just("grant"),
        member_ix,
        app_ix,
        st.sampled_from(SCOPE_SETS),
        st.sampled_from(sorted(LIFETIMES)),
    ),
    st.tuples(st.just("revoke"), member_ix, app_ix),
    st.tuples(st.just("hold"), member_ix, app_ix),
    st.tuples(st.just("release"), member_ix, app_ix),
    st.tuples(st.just("pause"), member_ix),
    st.tuples(st.just("terms"), app_ix),
    st.tuples(st.just("agree"), member_ix, app_ix),
    st.tuples(st.just("resume"), member_ix),
    st.tuples(st.just("advance"), st.sampled_from([600, TOKEN_SECONDS + 1, 86_401])),
    st.tuples(st.just("disable"), member_ix, st.sampled_from(["reach", "cadence"])),
    st.tuples(st.just("delete"), member_ix),
    st.tuples(st.just("query"), member_ix, app_ix),
    st.tuples(st.just("query"), member_ix, app_ix),
)


# -- the oracle ------------------------------------------------------------------------------


@dataclass
class Token:
    app: int
    scopes: frozenset[str]
    issued: float
    grant_ends: float
    agreed: int = 0  # the app's terms version the member agreed to
    dead: bool = False  # revoked or replaced
    held: bool = False  # this grant paused by itself


@dataclass
class Oracle:
    now: float = 0.0
    paused: set[int] = field(default_factory=set)
    deleted: set[int] = field(default_factory=set)
    scores: dict[int, set[str]] = field(
        default_factory=lambda: {m: set(s) for m, s in START_SCORES.items()}
    )
    tokens: dict[tuple[int, int], list[Token]] = field(default_factory=dict)
    terms: dict[int, int] = field(default_factory=lambda: dict.fromkeys(range(APPS), 0))

    def allowed(self, member: int, token: Token) -> bool:
        return (
            member not in self.deleted
            and member not in self.paused
            and not token.dead
            and not token.held
            and token.agreed == self.terms[token.app]
            and self.now < token.issued + TOKEN_SECONDS
            and self.now < token.grant_ends
        )

    def visible(self, member: int, token: Token) -> dict[str, Any] | None:
        """What the latest token of (member, app) may see, or None for a 401."""
        if not self.allowed(member, token):
            return None
        readable = {s.split(":")[1] for s in token.scopes if s.startswith("score:")}
        shown = sorted(readable & self.scores[member])
        history = (
            "reach" in shown
            and "score:reach" in token.scopes
            and "score:reach:history" in token.scopes
        )
        return {"handle": "profile" in token.scopes, "scores": shown, "history": history}


def level_of(scopes: frozenset[str], scorer: str) -> tuple[str, float | None]:
    """The oracle's reading of a scope set: (level, threshold) for one scorer."""
    for scope in scopes:
        parts = scope.split(":")
        if parts[:2] != ["score", scorer] or parts[2:] == ["history"]:
            continue
        if len(parts) == 2:
            return "exact", None
        if parts[2] == "band":
            return "band", None
        return "atleast", float(parts[3])
    raise AssertionError(f"{scorer} is not granted in {sorted(scopes)}")


def expected_fields(
    level: str, threshold: float | None, truth: tuple[float, float, float]
) -> tuple[dict[str, Any], set[str]]:
    """What a Score object discloses at a level: {field: value}, and {field: required scope}
    for the refused ones. `truth` is (value, band low, band high)."""
    value, low, high = truth
    if level == "exact":
        shown = {"value": value, "band": {"low": low, "high": high}, "explained": True}
        return shown | {"atLeast": None, "threshold": None}, set()
    refused_value = {"value": None, "explained": False}
    if level == "band":
        shown = refused_value | {"band": {"low": low, "high": high}}
        return shown | {"atLeast": None, "threshold": None}, {"value", "explanation"}
    assert threshold is not None
    shown = refused_value | {"band": None, "atLeast": value >= threshold, "threshold": threshold}
    return shown, {"value", "explanation", "band"}


def required_scope(scorer: str, field: str) -> str:
    return f"score:{scorer}:band" if field == "band" else f"score:{scorer}"


# -- replay against the real system ------------------------------------------------------------


def observed(response: httpx.Response) -> dict[str, Any] | None:
    if response.status_code == 401:
        return None
    viewer = response.json()["data"]["viewer"]
    shown = sorted(s["scorer"]["name"] for s in viewer["scores"])
    singles = sorted(n for n, key in (("reach", "r"), ("cadence", "c")) if viewer[key])
    assert shown == singles, "score(scorer:) and scores disagree"
    history = viewer["h"] is not None
    if history:
        assert all(e["node"]["value"] is not None for e in viewer["h"]["edges"])
    return {"handle": viewer["handle"] is not None, "scores": shown, "history": history}


def score_objects(viewer: dict[str, Any]) -> list[tuple[str, list[Any], dict[str, Any]]]:
    """Every Score object in an answer: (scorer, its path, the object)."""
    found = [
        (name, ["viewer", key], viewer[key])
        for name, key in (("reach", "r"), ("cadence", "c"))
        if viewer.get(key)
    ]
    for i, item in enumerate(viewer.get("scores") or []):
        found.append((item["scorer"]["name"], ["viewer", "scores", i], item))
    return found


def check_levels(body: dict[str, Any], scopes: frozenset[str], truth: dict[str, Any]) -> None:
    """No Score object reveals more (or less) than its granted level, under any key, and
    each refused field carries FORBIDDEN with the scope that would allow it."""
    viewer = body["data"]["viewer"]
    refusals = set()
    if "handle" in viewer and "profile" not in scopes:
        refusals.add((("viewer", "handle"), "profile"))
    for scorer, path, obj in score_objects(viewer):
        level, threshold = level_of(scopes, scorer)
        shown, refused = expected_fields(level, threshold, truth[scorer])
        for key in ("value", "band", "atLeast", "threshold"):
            if key in obj:
                assert obj[key] == shown[key], (scorer, key, obj)
        if "x" in obj:
            assert obj["x"] == shown["value"], (scorer, "x", obj)
        if "explanation" in obj:
            assert (obj["explanation"] is not None) == shown["explained"], (scorer, obj)
        for key in set(obj) & (refused | {"x"} if "value" in refused else refused):
            field = "value" if key == "x" else key
            refusals.add((tuple([*path, key]), required_scope(scorer, field)))
    errors = {
        (tuple(e["path"]), e["extensions"].get("required_scope"))
        for e in body.get("errors", [])
        if e["extensions"]["code"] == "FORBIDDEN"
    }
    assert errors == refusals, (errors, refusals)
    others = {e["extensions"]["code"] for e in body.get("errors", [])} - {"FORBIDDEN"}
    assert others <= {"NOT_FOUND"}, body


def observed_planned(response: httpx.Response) -> list[str] | None:
    if response.status_code == 401:
        return None
    viewer = response.json()["data"]["viewer"]
    return sorted(n for n, key in (("reach", "r"), ("cadence", "c")) if viewer[key])


async def true_scores(members: list[Any], flow: ScoringFlow) -> dict[int, dict[str, Any]]:
    """Each member's current values with their bands, read from the scoring domain."""
    truth: dict[int, dict[str, Any]] = {}
    for m, names in START_SCORES.items():
        truth[m] = {}
        for name in names:
            meta = flow.runner.meta(name)
            (row,) = await scoring.list_current_scores(
                vault=flow.vault, member_id=members[m].id, scorers=[name]
            )
            low, high = band_of(row.value, bands_of(meta.range, meta.bands))
            truth[m][name] = (row.value, low, high)
    return truth


async def check_bearer(access: str, oracle: Oracle, m: int, token: Token, where: str) -> None:
    """The one bearer decision against the oracle: whether, as whom, with what scopes, and
    with exactly the member's current scores (every scorer; the scopes filter them later)."""
    principal = await consent.resolve_bearer(access)
    assert (principal is not None) == oracle.allowed(m, token), where
    if principal is not None:
        assert principal.scopes == token.scopes and not principal.is_personal, where
        assert set(principal.scores) == oracle.scores[m], where


async def replay(
    sequence: list[tuple[Any, ...]], client: httpx.AsyncClient, vault: Vault, flow: ScoringFlow
) -> None:
    members = [await make_member(vault) for _ in range(MEMBERS)]
    registered = [await make_app(vault, f"App {i}") for i in range(APPS)]
    for m, names in START_SCORES.items():
        for name in sorted(names):
            await give_score(flow, members[m], name)
    truth = await true_scores(members, flow)
    oracle = Oracle()
    issued: dict[tuple[int, int], list[tuple[Token, Any]]] = {}
    clock.reset()
    for number, step in enumerate(sequence):
        kind, *args = step
        where = f"step {number} {step} of {sequence}"
        if kind == "grant":
            m, a, scopes, lifetime = args
            if m in oracle.deleted:
                continue
            for old, _ in issued.get((m, a), []):
                old.dead = True  # a new grant replaces the app's previous one
            real = await grant_token(members[m], registered[a], sorted(scopes), lifetime=lifetime)
            ends = oracle.now + LIFETIMES[lifetime]
            token = Token(a, scopes, oracle.now, ends, agreed=oracle.terms[a])
            issued.setdefault((m, a), []).append((token, real))
        elif kind == "revoke":
            m, a = args
            if m in oracle.deleted or not issued.get((m, a)):
                continue
            token, real = issued[(m, a)][-1]
            await grants.revoke_grant(member_id=members[m].id, grant_id=real.grant_id)
            token.dead = True
        elif kind in ("hold", "release"):
            m, a = args
            if m in oracle.deleted or not issued.get((m, a)):
                continue
            token, real = issued[(m, a)][-1]
            change = grants.pause_grant if kind == "hold" else grants.resume_grant
            try:
                await change(member_id=members[m].id, grant_id=real.grant_id)
            except InvalidInputError:
                # Only an ended grant refuses: revoked, or expired (by the clock).
                assert token.dead or oracle.now >= token.grant_ends, where
            else:
                token.held = kind == "hold"
        elif kind == "terms":
            oracle.terms[args[0]] += 1
            words = validate_terms(purpose=f"Purpose number {oracle.terms[args[0]]}.")
            await apps.change_terms(terms=words, client_id=registered[args[0]].app.client_id)
        elif kind == "agree":
            m, a = args
            if m in oracle.deleted or not issued.get((m, a)):
                continue
            token, real = issued[(m, a)][-1]
            app_id = registered[a].app.id
            current = (await apps.get_apps(ids=[app_id]))[app_id].terms_version
            try:
                await grants.agree_to_terms(
                    member_id=members[m].id, grant_id=real.grant_id, version=current
                )
            except InvalidInputError:
                assert token.dead or oracle.now >= token.grant_ends, where
            else:
                token.agreed = oracle.terms[a]
        elif kind == "pause" and args[0] not in oracle.deleted:
            await grants.pause_sharing(member_id=members[args[0]].id)
            oracle.paused.add(args[0])
        elif kind == "resume" and args[0] not in oracle.deleted:
            await grants.resume_sharing(member_id=members[args[0]].id)
            oracle.paused.discard(args[0])
        elif kind == "advance":
            clock.advance(args[0])
            oracle.now += args[0]
        elif kind == "disable" and args[0] not in oracle.deleted:
            m, name = args
            await scoring.disable_scorer(member_id=members[m].id, scorer=name)
            oracle.scores[m].discard(name)
        elif kind == "delete" and args[0] not in oracle.deleted:
            runtime = client._transport.app.state.runtime  # type: ignore[attr-defined]
            await erase.erase_member(
                vault=vault, settings=runtime.settings, member_id=members[args[0]].id
            )
            oracle.deleted.add(args[0])
        elif kind == "query":
            m, a = args
            for token, real in issued.get((m, a), []):
                headers = {"Authorization": f"Bearer {real.access_token}"}
                response = await client.post("/graphql", json={"query": QUERY}, headers=headers)
                assert response.status_code in (200, 401), where
                assert observed(response) == oracle.visible(m, token), where
                await check_bearer(real.access_token, oracle, m, token, where)
                planned = await client.post("/graphql", json={"query": PLANNED}, headers=headers)
                expected = oracle.visible(m, token)
                assert observed_planned(planned) == (expected and expected["scores"]), where
                if expected is not None:
                    check_levels(response.json(), token.scopes, truth[m])
                    check_levels(planned.json(), token.scopes, truth[m])
    clock.reset()


def sequences() -> list[list[tuple[Any, ...]]]:
    found: list[list[tuple[Any, ...]]] = []

    @settings(
        max_examples=12,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(steps, min_size=4, max_size=14))
    def collect(sequence: list[tuple[Any, ...]]) -> None:
        found.append(sequence)

    collect()
    return found


async def test_every_answer_matches_the_oracle(
    client: httpx.AsyncClient, vault: Vault, flow: ScoringFlow
) -> None:
    for sequence in sequences():
        await replay(sequence, client, vault, flow)


async def test_full_matrix_of_scope_subsets(
    client: httpx.AsyncClient, vault: Vault, flow: ScoringFlow
) -> None:
    """Every member x app x scope subset, then each of revoke / pause / expiry / deletion."""
    sequence: list[tuple[Any, ...]] = []
    for (m, a), scopes in zip(
        itertools.product(range(MEMBERS), range(APPS)), itertools.cycle(SCOPE_SETS), strict=False
    ):
        sequence += [("grant", m, a, scopes, "30d"), ("query", m, a)]
    sequence += [("revoke", 0, 0), ("query", 0, 0), ("pause", 1), ("query", 1, 1)]
    sequence += [("hold", 1, 1), ("resume", 1), ("query", 1, 1), ("release", 1, 1)]
    sequence += [("query", 1, 1), ("hold", 0, 1), ("query", 0, 1), ("release", 0, 1)]
    sequence += [("resume", 1), ("query", 1, 1), ("delete", 2), ("query", 2, 2)]
    sequence += [("advance", TOKEN_SECONDS + 1), ("query", 0, 1)]
    await replay(sequence, client, vault, flow)
