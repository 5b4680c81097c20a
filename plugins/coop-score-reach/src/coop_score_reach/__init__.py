"""The `reach` scorer: reactions received, each decaying with a half-life, log-scaled to 0-100.

Weights per reaction (a boost spreads a post further than a favourite):
favourites 1, replies 1.5, reblogs/boosts 2, quotes 2, forks 2, stars 3. The same weights hold
on every network (a Bluesky like is a favourite, a repost a reblog); explanations name the
network of each record.
Each record's weighted reactions decay by half every HALF_LIFE_DAYS (30 days) from the day
the record was published; records older than WINDOW_DAYS (365) no longer count.
The decayed total T maps to 100 * log10(1 + T) / log10(1 + SATURATION), capped at 100:
T = 10,000 weighted reactions (SATURATION) gives 100, T = 100 gives 50.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from coop.scoring.spec import API_VERSION, Contribution, InputRecord, ScoreResult

HALF_LIFE_DAYS = 30.0
WINDOW_DAYS = 365.0
SATURATION = 10_000.0
WEIGHTS = {
    "favourites": 1.0,
    "replies": 1.5,
    "reblogs": 2.0,
    "boosts": 2.0,
    "quotes": 2.0,
    "forks": 2.0,
    "stars": 3.0,
}
# One reaction of a kind, in words ("1 reply", not "1 replies").
SINGULAR = {
    "favourites": "favourite",
    "replies": "reply",
    "reblogs": "reblog",
    "boosts": "boost",
    "quotes": "quote",
    "forks": "fork",
    "stars": "star",
}
TOP_MOMENTS = 10
NETWORKS = {
    "bluesky": "Bluesky",
    "facebook": "Facebook",
    "feed": "your blog",
    "github": "GitHub",
    "instagram": "Instagram",
    "linkedin": "LinkedIn",
    "mastodon": "Mastodon",
    "x": "X/Twitter",
}


def network_name(record: InputRecord) -> str:
    """Where the record was published, in words ("" when coop did not say)."""
    return NETWORKS.get(record.network or "", record.network or "")


def _where(record: InputRecord) -> str:
    name = network_name(record)
    return f" on {name}" if name else ""


def _scale(total: float) -> float:
    return min(100.0, 100.0 * math.log10(1.0 + total) / math.log10(1.0 + SATURATION))


def _describe(counts: dict[str, int]) -> str:
    parts = [
        f"{n} {SINGULAR[kind] if n == 1 else kind}"
        for kind, n in sorted(counts.items())
        if kind in WEIGHTS and n > 0
    ]
    return ", ".join(parts) or "no reactions"


def _by_network(moments: list[tuple[float, float, InputRecord]], total: float) -> list[str]:
    """One sentence sharing today's weight out by network, when there is more than one."""
    shares: dict[str, float] = {}
    for decayed, _, record in moments:
        name = network_name(record) or "other sources"
        shares[name] = shares.get(name, 0.0) + decayed
    if len(shares) < 2 or total <= 0:
        return []
    parts = [f"{name} {value / total:.0%}" for name, value in sorted(shares.items())]
    return ["By network: " + ", ".join(parts) + "."]


class ReachScorer:
    """Reactions received, recent ones counting most."""

    api_version = API_VERSION
    name = "reach"
    version = "1.1.1"
    title = "Reach"
    description = (
        "How much people react to what you publish, on every network you connected: likes "
        "and favourites, boosts and reposts, replies, quotes and stars. "
        f"Each reaction loses half its weight every {HALF_LIFE_DAYS:g} days; "
        f"nothing older than {WINDOW_DAYS:g} days counts."
    )
    reads = ("post", "repository")
    range = (0.0, 100.0)
    needs_text = False
    homepage = "https://github.com/coop-dev/coop/tree/main/plugins/coop-score-reach"

    def score(self, records: Sequence[InputRecord], now: datetime) -> ScoreResult:
        moments: list[tuple[float, float, InputRecord]] = []  # (decayed, raw, record)
        aged_out = 0
        for record in records:
            raw = sum(WEIGHTS.get(k, 0.0) * max(0, int(n)) for k, n in record.counts.items())
            age = max(0.0, (now - record.occurred_at).total_seconds() / 86400.0)
            if age > WINDOW_DAYS:
                aged_out += 1
                continue
            if raw > 0:
                moments.append((raw * 0.5 ** (age / HALF_LIFE_DAYS), raw, record))
        total = sum(m[0] for m in moments)
        raw_total = sum(m[1] for m in moments)
        value = round(_scale(total), 6)
        moments.sort(key=lambda m: (-m[0], m[2].ref))
        contributions = [
            Contribution(
                amount=round(value * decayed / total, 6),
                reason=(
                    f"{record.kind}{_where(record)} of {record.occurred_at:%Y-%m-%d}: "
                    f"{_describe(dict(record.counts))}, now worth {decayed / raw:.0%} "
                    "of its first weight"
                ),
                ref=record.ref,
            )
            for decayed, raw, record in moments[:TOP_MOMENTS]
        ]
        reasons = [
            f"{len(moments)} of your records received reactions in the last "
            f"{WINDOW_DAYS:g} days, worth {total:.1f} weighted reactions today."
        ]
        if raw_total > 0:
            reasons.append(
                f"{1 - total / raw_total:.0%} of their weight has decayed "
                f"(half-life {HALF_LIFE_DAYS:g} days)."
            )
        reasons += _by_network(moments, total)
        if aged_out:
            reasons.append(f"{aged_out} older records no longer count.")
        breakdown: dict[str, float] = {}
        for decayed, _, record in moments:
            breakdown[record.kind] = breakdown.get(record.kind, 0.0) + decayed
        return ScoreResult(
            value=value,
            contributions=contributions,
            reasons=reasons,
            breakdown={k: round(v, 6) for k, v in sorted(breakdown.items())},
        )
