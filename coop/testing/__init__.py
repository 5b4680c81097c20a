"""Helpers for scorer authors: sample records, a runner that validates like the server, and
assertions about explanations. No server, database or sandbox needed (`now` is a fixture of
coop's pytest plugin, installed with `pip install "coop[test]"`)::

    from coop.testing import post, run_scorer, assert_explains, assert_deterministic

    def test_boosted_post_counts(now):
        records = [post(days_ago=1, reblogs=3, now=now)]
        result = run_scorer(MyScorer, records, now=now)
        assert_explains(result, records)

`run_in_sandbox` runs the installed scorer in the server's own sandbox, and
`assert_discovered` checks that its entry point resolves to the scorer.
"""

from __future__ import annotations

import itertools
import random
import warnings
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from coop.errors import ScorerOutputError
from coop.scoring.feeding import unfed_kinds, visible
from coop.scoring.runner import InProcessRunner
from coop.scoring.spec import InputRecord, ScoreResult
from coop.scoring.validate import ScorerMeta, check_contract

__all__ = [
    "NOW",
    "InvalidOutput",
    "MissingKindWarning",
    "activity",
    "assert_deterministic",
    "assert_discovered",
    "assert_explains",
    "audience",
    "check_scorer",
    "post",
    "record",
    "repository",
    "run_in_sandbox",
    "run_scorer",
    "sandbox_isolates",
    "steady_member",
]

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
InvalidOutput = ScorerOutputError  # what run_scorer raises when the server would reject output

_refs = itertools.count(1)


class MissingKindWarning(UserWarning):
    """The records given to a scorer hold none of a kind it reads: the server would run it
    the same way, silently without that kind (coop plugins list warns about it too)."""


def record(
    kind: str,
    *,
    days_ago: float = 0.0,
    now: datetime = NOW,
    counts: Mapping[str, int] | None = None,
    text: str | None = None,
    ref: str | None = None,
    network: str | None = None,
) -> InputRecord:
    """Any record. `ref` defaults to a unique `r<n>`."""
    return InputRecord(
        ref=ref or f"r{next(_refs)}",
        kind=kind,
        occurred_at=now - timedelta(days=days_ago),
        counts=dict(counts or {}),
        text=text,
        network=network,
    )


def post(
    *,
    days_ago: float = 0.0,
    now: datetime = NOW,
    favourites: int = 0,
    reblogs: int = 0,
    replies: int = 0,
    text: str | None = None,
    ref: str | None = None,
    network: str | None = None,
) -> InputRecord:
    """A post with reaction counts (keys as coop's connectors produce them)."""
    counts = {"favourites": favourites, "reblogs": reblogs, "replies": replies}
    return record(
        "post", days_ago=days_ago, now=now, counts=counts, text=text, ref=ref, network=network
    )


def repository(
    *, days_ago: float = 0.0, now: datetime = NOW, stars: int = 0, forks: int = 0
) -> InputRecord:
    return record("repository", days_ago=days_ago, now=now, counts={"stars": stars, "forks": forks})


def activity(
    *, days_ago: float = 0.0, now: datetime = NOW, network: str | None = None
) -> InputRecord:
    return record("activity", days_ago=days_ago, now=now, network=network)


def audience(*, days_ago: float = 0.0, now: datetime = NOW, followers: int = 0) -> InputRecord:
    return record("audience", days_ago=days_ago, now=now, counts={"followers": followers})


def steady_member(
    *, weeks: int = 12, per_week: int = 3, now: datetime = NOW, seed: int = 7
) -> list[InputRecord]:
    """A member who posts `per_week` times every week, with a few reactions each time."""
    rng = random.Random(seed)  # noqa: S311 - sample data, not secrets
    return [
        post(
            days_ago=week * 7 + day * 2 + 0.5,
            now=now,
            favourites=rng.randint(0, 9),
            reblogs=rng.randint(0, 3),
            replies=rng.randint(0, 2),
        )
        for week in range(weeks)
        for day in range(per_week)
    ]


def check_scorer(scorer: Any) -> ScorerMeta:
    """Check the scorer's declaration like the server does at load time (ContractViolation)."""
    return check_contract(scorer() if isinstance(scorer, type) else scorer)


def run_scorer(scorer: Any, records: Iterable[InputRecord], now: datetime = NOW) -> ScoreResult:
    """Run a scorer like the server: only the kinds it reads, text only if it asks, input
    through the wire encoding, output validated (raises InvalidOutput when rejected)."""
    runner = InProcessRunner()
    meta = runner.add(scorer)
    records = list(records)
    _warn_unfed(meta, records)
    return runner.run_sync(scorer=meta.name, records=visible(meta, records), now=now)


def _warn_unfed(meta: ScorerMeta, records: Sequence[InputRecord]) -> None:
    for kind in unfed_kinds(meta.reads, (r.kind for r in records)):
        warnings.warn(
            f"{meta.name} reads {kind} records but none of the {len(records)} records given "
            "is one: it scores without them (it receives only the kinds it reads)",
            MissingKindWarning,
            stacklevel=3,
        )


def sandbox_isolates() -> bool:
    """Whether `run_in_sandbox` gets the server's full isolation here (bubblewrap installed
    and running as root); otherwise it still runs in a separate, limited process."""
    import os

    from coop.scoring import jail

    return os.geteuid() == 0 and jail.find_bwrap() is not None


def run_in_sandbox(
    name: str, records: Iterable[InputRecord], now: datetime = NOW, *, timeout: float = 10.0
) -> ScoreResult:
    """Run the INSTALLED scorer `name` (its entry point) in the server's sandbox, as the
    server does: lazy imports, files and sockets behave as they will in production. Raises
    coop.errors.ScorerError (e.g. InvalidOutput); a raise carries `.failure` with the type,
    message and your traceback lines. Needs `pip install -e .` of the plugin first."""
    import asyncio

    from coop.scoring.sandbox import Sandbox, SandboxConfig

    async def go() -> ScoreResult:
        box = Sandbox(SandboxConfig(timeout_seconds=timeout, require_isolation=False, prefork=0))
        try:
            await box.start()
            records_given = list(records)
            meta = box.meta(name)
            _warn_unfed(meta, records_given)
            given = visible(meta, records_given)
            return await box.run(scorer=name, records=given, now=now)
        finally:
            await box.close()

    return asyncio.run(go())


def assert_discovered(scorer: Any) -> None:
    """The installed `coop.scorers` entry point with the scorer's declared name resolves to
    this scorer (run `pip install -e .` after changing pyproject.toml)."""
    import importlib

    from coop.scoring.registry import discover

    meta = check_scorer(scorer)
    cls = scorer if isinstance(scorer, type) else type(scorer)
    entry = next((e for e in discover(allow=None) if e.name == meta.name), None)
    assert entry is not None, (
        f"no installed coop.scorers entry point is named {meta.name!r}: "
        f'add `{meta.name} = "{cls.__module__}:{cls.__qualname__}"` and pip install -e .'
    )
    module, _, attr = entry.value.partition(":")
    found: Any = importlib.import_module(module)
    for part in attr.split("."):
        found = getattr(found, part)
    assert found is cls or found is scorer, (
        f"entry point {meta.name} = {entry.value!r} is not {cls.__module__}:{cls.__qualname__}"
    )


def assert_explains(
    result: ScoreResult,
    records: Sequence[InputRecord] = (),
    *,
    min_contributions: int = 1,
    mentions: Iterable[str] = (),
) -> None:
    """The result explains itself: enough contributions, each pointing at one of `records`
    (when given), at least one reason, and every text in `mentions` appears in a reason or
    a contribution's reason."""
    assert len(result.contributions) >= min_contributions, (
        f"expected at least {min_contributions} contributions, got {len(result.contributions)}"
    )
    assert result.reasons, "expected at least one reason"
    if records:
        known = {r.ref for r in records}
        stray = [c.ref for c in result.contributions if c.ref is not None and c.ref not in known]
        assert not stray, f"contributions point at unknown records: {stray}"
    texts = [*result.reasons, *(c.reason for c in result.contributions)]
    for needle in mentions:
        assert any(needle in t for t in texts), f"no reason mentions {needle!r}"


def assert_deterministic(
    scorer: Any, records: Sequence[InputRecord], now: datetime = NOW, *, runs: int = 3
) -> ScoreResult:
    """Same records (in any order) and same `now` give the identical result."""
    first = run_scorer(scorer, records, now)
    rng = random.Random(0)  # noqa: S311 - a shuffle, not a secret
    for _ in range(runs):
        shuffled = list(records)
        rng.shuffle(shuffled)
        again = run_scorer(scorer, shuffled, now)
        assert again == first, "the scorer gave a different result for the same input"
    return first
