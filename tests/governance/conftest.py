"""Governance fixtures: real members (with data keys) and scorer versions to propose."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from coop.governance.rules import Rules
from coop.members.models import Member
from coop.scoring.validate import ScorerMeta
from coop.vault import Vault
from tests.api.factories import make_member

RULES = Rules(quorum=50, majority=50, voting_hours=24)

REACH_1 = ScorerMeta(
    name="reach",
    version="1.0",
    title="Reach",
    description="How far your posts travel.",
    reads=("post",),
    range=(0.0, 100.0),
    needs_text=False,
    homepage="https://example.org/reach",
)
REACH_2 = replace(REACH_1, version="2.0", reads=("post", "activity"), needs_text=True)


@pytest.fixture
def new_members(db: str, vault: Vault) -> Callable[[int], object]:
    async def make(n: int) -> list[Member]:
        return [await make_member(vault) for _ in range(n)]

    return make
