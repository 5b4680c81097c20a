"""API fixtures: the app with an in-process scoring flow (the reference plugins, loaded
through their entry points exactly like the server does, but run without the sandbox)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from importlib import metadata
from typing import Any

import pytest

from coop.jobs.scoring import ScoringFlow
from coop.members.models import Member
from coop.scoring import service as scoring
from coop.scoring.sandbox import InProcessRunner
from coop.scoring.validate import ScorerMeta
from coop.types import utcnow
from coop.vault import Vault


def reference_runner() -> InProcessRunner:
    runner = InProcessRunner()
    for point in metadata.entry_points(group="coop.scorers"):
        if point.name in ("reach", "cadence"):
            runner.add(point.load())
    return runner


class InProcessFlow(ScoringFlow):
    """The scoring flow with in-process scorers: its catalogue is what the runner holds."""

    async def installed(self) -> list[ScorerMeta]:
        assert isinstance(self.runner, InProcessRunner)
        return [meta for _, meta in self.runner.scorers.values()]


@pytest.fixture
def flow(app: Any, vault: Vault) -> ScoringFlow:
    flow = InProcessFlow(vault=vault, runner=reference_runner())
    app.state.runtime.scoring = flow
    return flow


async def give_score(
    flow: ScoringFlow, member: Member, scorer: str = "reach", *, posts: int = 3
) -> None:
    """Enable `scorer` for the member and compute a score from `posts` synthetic posts (the
    same records again on a second call, plus the new ones)."""
    await scoring.enable_scorer(member_id=member.id, meta=flow.runner.meta(scorer))
    now = utcnow()
    records = [
        scoring.MemberRecord(
            record_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{member.id}/post-{i}"),  # stable ids
            kind="post",
            occurred_at=now - timedelta(days=i + 1),
            counts={"favourites": 10 * (i + 1), "reblogs": i},
        )
        for i in range(posts)
    ]
    await scoring.compute_score(
        vault=flow.vault, runner=flow.runner, member_id=member.id, scorer=scorer, records=records
    )
