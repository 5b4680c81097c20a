"""The `cadence` scorer: how steadily a member publishes over the last 12 weeks.

Each of the 12 weeks ending at `now` counts the member's posts and public activity, capped at
WEEKLY_CAP (7) so a burst week weighs no more than a steady one. The score is

    100 * coverage * steadiness
    coverage   = active weeks / 12
    steadiness = 1 - 0.5 * min(1, coefficient of variation of the capped weekly counts)

so publishing a little every week scores highest, and 80 posts in one week then silence
scores low. Posts and activity count alike on every network the member connected (a Bluesky
post, a Facebook comment, a LinkedIn share, a GitHub push); each week's explanation says on
which networks.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from datetime import datetime, timedelta

from coop.scoring.spec import API_VERSION, Contribution, InputRecord, ScoreResult

WEEKS = 12
WEEKLY_CAP = 7
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


def _networks(week: Sequence[InputRecord]) -> str:
    """ " (Bluesky 2, Facebook 1)" for a week's records, or "" when coop named no network."""
    counts: dict[str, int] = {}
    for record in week:
        if record.network:
            name = NETWORKS.get(record.network, record.network)
            counts[name] = counts.get(name, 0) + 1
    if not counts:
        return ""
    return " (" + ", ".join(f"{name} {n}" for name, n in sorted(counts.items())) + ")"


class CadenceScorer:
    """Regular publishing over the last 12 weeks; bursts do not help."""

    api_version = API_VERSION
    name = "cadence"
    version = "1.2.0"
    title = "Cadence"
    description = (
        "How steadily you publish over the last 12 weeks, on every network you connected. "
        "A little every week scores higher "
        f"than a burst: each week counts at most {WEEKLY_CAP} items."
    )
    reads = ("post", "activity")
    # Only when and where: never reaction counts (members read "dates and networks only").
    fields = {"post": ("occurred_at", "network"), "activity": ("occurred_at", "network")}
    range = (0.0, 100.0)
    needs_text = False
    homepage = "https://github.com/coop-dev/coop/tree/main/plugins/coop-score-cadence"

    def score(self, records: Sequence[InputRecord], now: datetime) -> ScoreResult:
        start = now - timedelta(weeks=WEEKS)
        weeks: list[list[InputRecord]] = [[] for _ in range(WEEKS)]
        for record in sorted(records, key=lambda r: (r.occurred_at, r.ref)):
            if start <= record.occurred_at < now:
                index = int((record.occurred_at - start) / timedelta(weeks=1))
                weeks[min(index, WEEKS - 1)].append(record)
        counts = [min(len(week), WEEKLY_CAP) for week in weeks]
        active = sum(1 for c in counts if c)
        mean = statistics.fmean(counts)
        cv = statistics.pstdev(counts) / mean if mean else 1.0
        coverage = active / WEEKS
        steadiness = 1.0 - 0.5 * min(1.0, cv)
        value = round(100.0 * coverage * steadiness, 6)
        labels = [f"{start + timedelta(weeks=i):%Y-%m-%d}" for i in range(WEEKS)]
        contributions = [
            Contribution(
                amount=round(value / active, 6),
                reason=f"week of {labels[i]}: {len(week)} published{_networks(week)}",
                ref=week[0].ref,
            )
            for i, week in enumerate(weeks)
            if week
        ]
        reasons = [f"You published in {active} of the last {WEEKS} weeks."]
        reasons += [
            f"Week of {labels[i]}: {len(week)} published{_networks(week)}"
            + (f" (counts as {WEEKLY_CAP})" if len(week) > WEEKLY_CAP else "")
            for i, week in enumerate(weeks)
        ][-(20 - 2) :]
        reasons.append(f"Steadiness {steadiness:.2f} (1.00 = the same amount every week).")
        return ScoreResult(
            value=value,
            contributions=contributions,
            reasons=reasons,
            breakdown={labels[i]: float(c) for i, c in enumerate(counts)},
        )
