"""Scopes: what an app (or a personal token) may read, and how to say it in plain words."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping

from coop.errors import InvalidScopeError

from .disclosure import (
    EXACT,
    HISTORY,
    check_levels,
    level_words,
    parse_score_scope,
    threshold_fits,
    title_of,
)

# Returns (or awaits to) the names of the scorers installed right now; None means "no
# registry: accept any well-formed name". The composition root puts it in
# Runtime.known_scorers; transports resolve it with `known_scorer_names`.
KnownScorers = Callable[[], Collection[str] | Awaitable[Collection[str] | None] | None] | None
# Returns (awaits to) each loaded scorer's band edges (coop.scoring.bands), for thresholds
# (inside the range) and band examples on the consent page: Runtime.scorer_bands.
ScorerBands = Callable[[], Awaitable[Mapping[str, tuple[float, ...]]]] | None

PROFILE = "profile"
MEMBER_MANAGE = "member:manage"
MAX_SCOPES = 50


async def known_scorer_names(source: KnownScorers) -> frozenset[str] | None:
    """The installed scorer names from `source` (sync or async), or None without a registry."""
    if source is None:
        return None
    names = source()
    if inspect.isawaitable(names):
        names = await names
    return None if names is None else frozenset(names)


async def scorer_bands(source: ScorerBands) -> Mapping[str, tuple[float, ...]]:
    """The loaded scorers' band edges from `source` ({} without one)."""
    return {} if source is None else await source()


def ranges_of(bands: Mapping[str, tuple[float, ...]]) -> dict[str, tuple[float, float]]:
    """Each scorer's declared range: its first and last band edges."""
    return {name: (edges[0], edges[-1]) for name, edges in bands.items()}


def parse_scopes(
    raw: str | Iterable[str] | None,
    *,
    known_scorers: Collection[str] | None = None,
    personal: bool = False,
    ranges: Mapping[str, tuple[float, float]] | None = None,
) -> list[str]:
    """Split, validate and de-duplicate scopes (RFC 6749 §3.3). Unknown ones are refused.

    `personal` allows `member:manage`, which only personal access tokens may carry. A score
    is asked for at one level only (`score:NAME`, `score:NAME:band` or
    `score:NAME:atleast:N`); with `ranges` (scorer -> declared range), N must lie inside it.
    """
    items = raw.split(" ") if isinstance(raw, str) else list(raw or [])
    scopes = list(dict.fromkeys(s for s in items if s))
    if not scopes:
        raise InvalidScopeError("Ask for at least one scope.")
    if len(scopes) > MAX_SCOPES:
        raise InvalidScopeError(f"At most {MAX_SCOPES} scopes.")
    known = set(known_scorers) if known_scorers is not None else None
    for scope in scopes:
        if scope == PROFILE or (personal and scope == MEMBER_MANAGE):
            continue
        parsed = parse_score_scope(scope)
        if parsed is None:
            raise InvalidScopeError(f"Unknown scope: {scope[:80]}")
        if known is not None and parsed.scorer not in known:
            raise InvalidScopeError(
                "No such scorer offered here (not installed, or with governance on not "
                f"approved by the members): {scope[:80]}"
            )
        bounds = (ranges or {}).get(parsed.scorer)
        if bounds is not None and not threshold_fits(parsed, bounds):
            raise InvalidScopeError(f"The threshold is outside the score's range: {scope[:80]}")
    problem = check_levels(scopes)
    if problem:
        raise InvalidScopeError(problem)
    return scopes


def describe_scope(scope: str, *, band_example: str | None = None) -> str:
    """The scope in plain words, as the consent page shows it (with `band_example`, a band
    of the scorer such as "60-70")."""
    if scope == PROFILE:
        return "your handle (your name on coop), nothing else"
    if scope == MEMBER_MANAGE:
        return "manage your account through the API (connectors, scorers, grants)"
    parsed = parse_score_scope(scope)
    if parsed is None:
        return scope
    title = title_of(parsed.scorer)
    if parsed.level == HISTORY:
        return f"the history of your {title} score"
    if parsed.level == EXACT:
        return f"your {title} score: the exact value and its explanation"
    return f"your {title} score: {level_words(parsed, band_example)}"
