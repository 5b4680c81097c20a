"""The authorization matrix (GQ-15): Hypothesis generates sequences of grants (each scope
subset, two lifetimes), revocations, pauses and resumes (of all sharing and of one grant),
clock jumps past token and grant
expiry, scorer disabling and account deletion, interleaved with queries by every app for
every member. After every query, what the API disclosed must equal a small pure-Python
oracle's answer: data is visible if and only if the oracle allows it.

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

from coop.consent import grants
from coop.errors import InvalidInputError
from coop.jobs.scoring import ScoringFlow
from coop.portability import erase
from coop.scoring import service as scoring
from coop.types import clock
from coop.vault import Vault
from tests.api.conftest import give_score
from tests.api.factories import grant_token, make_app, make_member

MEMBERS, APPS = 3, 3
SCOPES = ("profile", "score:reach", "score:cadence")
SCOPE_SETS = [
    frozenset(c) for n in range(1, len(SCOPES) + 1) for c in itertools.combinations(SCOPES, n)
]
# member -> scorers with a score at the start
START_SCORES = {0: {"reach", "cadence"}, 1: {"reach"}, 2: set()}
TOKEN_SECONDS, LIFETIMES = 3600, {"1d": 86_400, "30d": 30 * 86_400}
QUERY = """{ viewer { handle r: score(scorer: "reach") { value }
  c: score(scorer: "cadence") { value } scores { scorer { name } } } }"""
# The same two reads in a document of the planned shape (coop.api.plans): every answer of
# the compiled path is held to the oracle too.
PLANNED = """{ viewer { r: score(scorer: "reach") { value }
  c: score(scorer: "cadence") { scorer { name } } } }"""

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
    scopes: frozenset[str]
    issued: float
    grant_ends: float
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

    def allowed(self, member: int, token: Token) -> bool:
        return (
            member not in self.deleted
            and member not in self.paused
            and not token.dead
            and not token.held
            and self.now < token.issued + TOKEN_SECONDS
            and self.now < token.grant_ends
        )

    def visible(self, member: int, token: Token) -> dict[str, Any] | None:
        """What the latest token of (member, app) may see, or None for a 401."""
        if not self.allowed(member, token):
            return None
        readable = {s.split(":")[1] for s in token.scopes if s.startswith("score:")}
        shown = sorted(readable & self.scores[member])
        return {"handle": "profile" in token.scopes, "scores": shown}


# -- replay against the real system ------------------------------------------------------------


def observed(response: httpx.Response) -> dict[str, Any] | None:
    if response.status_code == 401:
        return None
    viewer = response.json()["data"]["viewer"]
    shown = sorted(s["scorer"]["name"] for s in viewer["scores"])
    singles = sorted(n for n, key in (("reach", "r"), ("cadence", "c")) if viewer[key])
    assert shown == singles, "score(scorer:) and scores disagree"
    return {"handle": viewer["handle"] is not None, "scores": shown}


def observed_planned(response: httpx.Response) -> list[str] | None:
    if response.status_code == 401:
        return None
    viewer = response.json()["data"]["viewer"]
    return sorted(n for n, key in (("reach", "r"), ("cadence", "c")) if viewer[key])


async def replay(
    sequence: list[tuple[Any, ...]], client: httpx.AsyncClient, vault: Vault, flow: ScoringFlow
) -> None:
    members = [await make_member(vault) for _ in range(MEMBERS)]
    apps = [await make_app(vault, f"App {i}") for i in range(APPS)]
    for m, names in START_SCORES.items():
        for name in sorted(names):
            await give_score(flow, members[m], name)
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
            real = await grant_token(members[m], apps[a], sorted(scopes), lifetime=lifetime)
            token = Token(scopes, oracle.now, oracle.now + LIFETIMES[lifetime])
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
                planned = await client.post("/graphql", json={"query": PLANNED}, headers=headers)
                expected = oracle.visible(m, token)
                assert observed_planned(planned) == (expected and expected["scores"]), where
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
