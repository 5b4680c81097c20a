"""Disclosure levels: how precisely a grant lets an app learn a score, and THE gate that every
API field revealing anything about a score's value goes through (`gate`).

The level is carried by the scope string itself, so a grant's, a token's and a receipt's
scopes say it without another column:

- `score:NAME` (exact): the value, its explanation, its changes and (with
  `score:NAME:history`) its history;
- `score:NAME:band`: only the band the value falls in (coop.scoring.bands);
- `score:NAME:atleast:N`: only whether the value is at least N (N kept as the app wrote it).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache

EXACT, BAND, ATLEAST, HISTORY = "exact", "band", "atleast", "history"
LEVELS = (EXACT, BAND, ATLEAST)
SCORER_NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}\Z")
# A threshold as an app may write it: a plain decimal, no exponent, no sign but minus.
THRESHOLD = re.compile(r"-?(0|[1-9][0-9]{0,8})(\.[0-9]{1,6})?\Z")


@dataclass(frozen=True)
class ScoreScope:
    """One parsed `score:…` scope."""

    scorer: str
    level: str  # exact, band, atleast, history
    threshold: str | None = None  # atleast only, exactly as written

    @property
    def scope(self) -> str:
        return score_scope(self.scorer, self.level, self.threshold)

    @property
    def threshold_value(self) -> float:
        assert self.threshold is not None
        return float(self.threshold)


def score_scope(scorer: str, level: str = EXACT, threshold: str | None = None) -> str:
    """The scope string for a scorer at a level."""
    if level == EXACT:
        return f"score:{scorer}"
    if level == ATLEAST:
        return f"score:{scorer}:atleast:{threshold}"
    return f"score:{scorer}:{level}"


@lru_cache(maxsize=1024)  # a pure function of the text, asked several times per API read
def parse_score_scope(scope: str) -> ScoreScope | None:
    """The parsed scope, or None when `scope` is not a well-formed `score:…` scope."""
    parts = scope.split(":")
    if parts[0] != "score" or len(parts) < 2 or not SCORER_NAME.match(parts[1]):
        return None
    name, rest = parts[1], parts[2:]
    if not rest:
        return ScoreScope(name, EXACT)
    if rest in (["band"], ["history"]):
        return ScoreScope(name, rest[0])
    if len(rest) == 2 and rest[0] == ATLEAST and THRESHOLD.match(rest[1]):
        return ScoreScope(name, ATLEAST, rest[1])
    return None


def disclosure(scopes: Iterable[str], scorer: str) -> ScoreScope | None:
    """The level at which `scopes` let their holder read `scorer` (exact, band or atleast),
    or None. Parsing admits one level per scorer; should several appear, the least wins."""
    found = [p for p in map(parse_score_scope, scopes) if p and p.scorer == scorer]
    levels = [p for p in found if p.level != HISTORY]
    if not levels:
        return None
    return min(levels, key=lambda p: -LEVELS.index(p.level))


def scorers_of(scopes: Iterable[str]) -> set[str]:
    """The scorers `scopes` let their holder read at some level."""
    parsed = (parse_score_scope(s) for s in scopes)
    return {p.scorer for p in parsed if p is not None and p.level != HISTORY}


def check_levels(scopes: Sequence[str]) -> str | None:
    """Why a list of requested scopes is not acceptable (one level per scorer), or None."""
    seen: set[str] = set()
    for parsed in filter(None, map(parse_score_scope, scopes)):
        if parsed.level == HISTORY:
            continue
        if parsed.scorer in seen:
            return f"Ask for one level of the {parsed.scorer} score, not several."
        seen.add(parsed.scorer)
    return None


def threshold_fits(parsed: ScoreScope, bounds: tuple[float, float]) -> bool:
    """An `atleast:N` threshold lies inside the scorer's declared range."""
    return parsed.level != ATLEAST or bounds[0] <= parsed.threshold_value <= bounds[1]


# -- lowering -----------------------------------------------------------------------------------


def lower_levels(scope: str) -> list[str]:
    """The scopes a member may choose instead of `scope` (itself first; "nothing" is always
    possible besides): exact -> band; a band or a threshold only itself. Never higher."""
    parsed = parse_score_scope(scope)
    if parsed is not None and parsed.level == EXACT:
        return [scope, score_scope(parsed.scorer, BAND)]
    return [scope]


def is_lower_or_same(new: str, old: str) -> bool:
    """`new` reveals no more than `old` about the same score (or is the same scope)."""
    return new in lower_levels(old)


def narrowed(asked: Sequence[str], granted: Collection[str]) -> list[str] | None:
    """`asked` as a narrowing of `granted` (fewer scopes, or lower levels of granted ones, one
    level per score, history only beside the exact level), or None if it asks for more."""
    if check_levels(asked) is not None:
        return None
    if not all(any(is_lower_or_same(a, g) for g in granted) for a in asked):
        return None
    return keep_history(asked)


def chosen_scopes(requested: Sequence[str], submitted: Collection[str]) -> list[str] | None:
    """What a member chose on the consent page: of `submitted`, the requested scopes or lower
    levels of them, in the request's order (anything else is ignored); history only beside
    the exact level. None when the choice names two levels of one score."""
    chosen = list(dict.fromkeys(s for r in requested for s in lower_levels(r) if s in submitted))
    if check_levels(chosen) is not None:
        return None
    return keep_history(chosen)


def keep_history(scopes: Collection[str]) -> list[str]:
    """Drop `score:NAME:history` wherever `score:NAME` (exact) is not kept with it."""
    exact = {p.scorer for p in map(parse_score_scope, scopes) if p and p.level == EXACT}
    return [
        s
        for s in scopes
        if (p := parse_score_scope(s)) is None or p.level != HISTORY or p.scorer in exact
    ]


# -- the gate -------------------------------------------------------------------------------------


class Reveals(Enum):
    """What a field tells about a score, to the gate."""

    VALUE = "value"  # the value or anything it can be computed from: needs the exact level
    BAND = "band"  # the band: band or exact level
    THRESHOLD = "threshold"  # the grant's threshold and the answer to it: atleast level
    NOTHING = "nothing"  # the scorer, its range, when: any level


@dataclass(frozen=True)
class Verdict:
    """The gate's answer: `allowed`; else the field is null, and refused with
    `required_scope` when a higher level would allow it (None: nothing to refuse, e.g. a
    threshold field at a level without a threshold)."""

    allowed: bool
    required_scope: str | None = None


ALLOW = Verdict(True)


def gate(scopes: Iterable[str], scorer: str, reveals: Reveals) -> Verdict:
    """May a holder of `scopes` see what a field that `reveals` this tells about `scorer`?"""
    granted = disclosure(scopes, scorer)
    if granted is None:
        return Verdict(False, score_scope(scorer))
    level = granted.level
    if reveals is Reveals.NOTHING:
        return ALLOW
    if reveals is Reveals.VALUE:
        return ALLOW if level == EXACT else Verdict(False, score_scope(scorer))
    if reveals is Reveals.BAND:
        return ALLOW if level in (EXACT, BAND) else Verdict(False, score_scope(scorer, BAND))
    return ALLOW if level == ATLEAST else Verdict(False)


# -- plain words ----------------------------------------------------------------------------------


def title_of(scorer: str) -> str:
    return scorer.replace("_", " ").replace("-", " ").title()


def level_words(parsed: ScoreScope, example: str | None = None) -> str:
    """What an app learns at this level, in plain words ("the exact value")."""
    if parsed.level == EXACT:
        return "the exact value"
    if parsed.level == BAND:
        return f"a range such as {example}" if example else "a range it falls in"
    if parsed.level == ATLEAST:
        return f"only whether it is at least {parsed.threshold}"
    return "its history"


@dataclass(frozen=True)
class LevelChoice:
    """One option of a score on the consent or Apps page: the scope it grants ("" for
    nothing) and what the app would learn, in plain words."""

    scope: str
    words: str


def level_choices(scope: str, example: str | None = None) -> list[LevelChoice]:
    """The options a member has for a requested (or granted) score scope, highest first,
    ending with "nothing": exact -> band -> nothing; a band or a threshold -> nothing."""
    options = [parse_score_scope(s) for s in lower_levels(scope)]
    words = [
        LevelChoice(p.scope, level_words(p, example) + (" and why" if p.level == EXACT else ""))
        for p in options
        if p is not None
    ]
    return [*words, LevelChoice("", "nothing")]


def read_words(scope: str) -> str | None:
    """An access-log line's verb phrase for a score read ("read whether your Reach score is
    at least 60"), or None for other scopes."""
    parsed = parse_score_scope(scope)
    if parsed is None:
        return None
    title = title_of(parsed.scorer)
    if parsed.level == BAND:
        return f"read the range of your {title} score"
    if parsed.level == ATLEAST:
        return f"read whether your {title} score is at least {parsed.threshold}"
    if parsed.level == HISTORY:
        return f"read the history of your {title} score"
    return f"read the exact value of your {title} score"


def history_readable(scopes: Collection[str], scorer: str) -> bool:
    """History reveals every past value: it needs `score:NAME:history` and the exact level."""
    return score_scope(scorer, HISTORY) in scopes and gate(scopes, scorer, Reveals.VALUE).allowed


def levels_of(scopes: Iterable[str]) -> dict[str, str]:
    """Each granted score's level, as the export shows it: exact, band or atleast:N."""
    parsed = (parse_score_scope(s) for s in scopes)
    return {
        p.scorer: p.level if p.level != ATLEAST else f"{ATLEAST}:{p.threshold}"
        for p in parsed
        if p is not None and p.level != HISTORY
    }
