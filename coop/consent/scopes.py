"""Scopes: what an app (or a personal token) may read, and how to say it in plain words."""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Collection, Iterable

from coop.errors import InvalidScopeError

# Returns (or awaits to) the names of the scorers installed right now; None means "no
# registry: accept any well-formed name". The composition root puts it in
# Runtime.extras[KNOWN_SCORERS_KEY]; transports resolve it with `known_scorer_names`.
KnownScorers = Callable[[], Collection[str] | Awaitable[Collection[str] | None] | None] | None
KNOWN_SCORERS_KEY = "known_scorers"

SCORER_NAME = re.compile(r"[a-z][a-z0-9_-]*\Z")
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


def _scorer_of(scope: str) -> tuple[str, bool] | None:
    """('reach', False) for score:reach, ('reach', True) for score:reach:history."""
    parts = scope.split(":")
    if parts[0] != "score" or len(parts) not in (2, 3):
        return None
    if len(parts) == 3 and parts[2] != "history":
        return None
    if not SCORER_NAME.match(parts[1]) or len(parts[1]) > 64:
        return None
    return parts[1], len(parts) == 3


def parse_scopes(
    raw: str | Iterable[str] | None,
    *,
    known_scorers: Collection[str] | None = None,
    personal: bool = False,
) -> list[str]:
    """Split, validate and de-duplicate scopes (RFC 6749 §3.3). Unknown ones are refused.

    `personal` allows `member:manage`, which only personal access tokens may carry.
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
        scorer = _scorer_of(scope)
        if scorer is None:
            raise InvalidScopeError(f"Unknown scope: {scope[:80]}")
        if known is not None and scorer[0] not in known:
            raise InvalidScopeError(f"Unknown scorer in scope: {scope[:80]}")
    return scopes


def describe_scope(scope: str) -> str:
    """The scope in plain words, as the consent page shows it."""
    if scope == PROFILE:
        return "your handle (your name on coop), nothing else"
    if scope == MEMBER_MANAGE:
        return "manage your account through the API (connectors, scorers, grants)"
    scorer = _scorer_of(scope)
    if scorer is None:
        return scope
    title = scorer[0].replace("_", " ").replace("-", " ").title()
    if scorer[1]:
        return f"the history of your {title} score"
    return f"your {title} score and its explanation"
