"""The API's raw score reads (coop.scoring.reads) answer as the ORM reads in
coop.scoring.service do, on both engines, and stop at once when the member's key is gone."""

from __future__ import annotations

import uuid

import pytest

from coop.errors import KeyMissingError
from coop.scoring import reads, service
from coop.scoring.models import Score, ScorerConsent
from coop.scoring.runner import InProcessRunner
from coop.vault import Vault
from tests.scoring.factories import make_member
from tests.scoring.test_service import compute, enable, member, member_records, runner

__all__ = ["member", "runner"]  # fixtures


async def _three_scores(vault: Vault, runner: InProcessRunner, member: uuid.UUID) -> None:
    await enable(member, runner)
    for n in (1, 3, 5):
        await compute(vault, runner, member, member_records(n, start=n))


async def test_history_pages_are_the_orm_history(
    vault: Vault, runner: InProcessRunner, member: uuid.UUID
) -> None:
    await _three_scores(vault, runner, member)
    full = await service.list_history(vault=vault, member_id=member, scorer="decay", explain=True)
    assert len(full) == 3 and full[0].change is not None
    for offset in range(4):
        page = await reads.read_history(
            vault=vault, member_id=member, scorer="decay", limit=2, offset=offset, explain=True
        )
        assert page == full[offset : offset + 2]
    bare = await reads.read_history(vault=vault, member_id=member, scorer="decay", limit=3)
    assert [v.explanation for v in bare] == [None] * 3  # not opened unless asked
    assert [v.change for v in bare] == [v.change for v in full]
    other = await make_member(vault)
    assert await reads.read_history(vault=vault, member_id=other, scorer="decay", limit=3) == []


async def test_history_is_empty_while_the_scorer_is_not_enabled(
    vault: Vault, runner: InProcessRunner, member: uuid.UUID
) -> None:
    await _three_scores(vault, runner, member)
    # A score that outlived its scorer's disabling (a run racing it) is not history.
    await ScorerConsent.filter(member_id=member, scorer="decay").update(enabled=False)
    assert await Score.filter(member_id=member).count() == 3
    assert await reads.read_history(vault=vault, member_id=member, scorer="decay", limit=3) == []


async def test_explanations_and_states_are_the_orm_ones(
    vault: Vault, runner: InProcessRunner, member: uuid.UUID
) -> None:
    await _three_scores(vault, runner, member)
    full = await service.list_history(vault=vault, member_id=member, scorer="decay", explain=True)
    ids = [v.id for v in full]
    opened = await reads.read_explanations(vault=vault, member_id=member, score_ids=ids)
    assert opened == {v.id: v.explanation for v in full}
    await ScorerConsent.filter(member_id=member, scorer="decay").update(stale_reason="kept 1.0")
    states = await reads.current_states(vault=vault, member_id=member, score_ids=ids)
    assert {i: (s.change, s.stale_reason) for i, s in states.items()} == {
        v.id: (v.change, "kept 1.0") for v in full
    }
    other = await make_member(vault)  # another member's score ids open nothing
    assert await reads.read_explanations(vault=vault, member_id=other, score_ids=ids) == {}
    assert await reads.current_states(vault=vault, member_id=other, score_ids=ids) == {}


async def test_every_read_refuses_once_the_key_is_shredded(
    vault: Vault, runner: InProcessRunner, member: uuid.UUID
) -> None:
    await _three_scores(vault, runner, member)
    ids = [v.id for v in await service.list_history(vault=vault, member_id=member, scorer="decay")]
    await reads.read_history(vault=vault, member_id=member, scorer="decay", limit=1)  # opens
    assert await vault.shred(member)
    with pytest.raises(KeyMissingError):
        await reads.read_history(vault=vault, member_id=member, scorer="decay", limit=1)
    with pytest.raises(KeyMissingError):
        await reads.read_explanations(vault=vault, member_id=member, score_ids=ids)
    with pytest.raises(KeyMissingError):
        await reads.current_states(vault=vault, member_id=member, score_ids=ids)
