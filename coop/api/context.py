"""The per-request context: who calls, the backend, the request id, the per-request reads."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from strawberry.dataloader import DataLoader

from coop.api.backend import Backend, ExplanationView, ScoreStateView
from coop.consent.bearer import CurrentScore, Principal


def _explanation_loader(
    backend: Backend, principal: Principal
) -> DataLoader[CurrentScore, ExplanationView]:
    async def load(scores: Sequence[CurrentScore]) -> list[ExplanationView]:
        found = await backend.explain(principal, scores)
        empty = ExplanationView(contributions=[], reasons=[])
        return [found.get(score.id, empty) for score in scores]

    return DataLoader(load_fn=load, cache_key_fn=lambda score: score.id)


def _state_loader(
    backend: Backend, principal: Principal
) -> DataLoader[CurrentScore, ScoreStateView]:
    async def load(scores: Sequence[CurrentScore]) -> list[ScoreStateView]:
        found = await backend.score_states(principal, scores)
        fresh = ScoreStateView(change=None, stale=False)
        return [found.get(score.id, fresh) for score in scores]

    return DataLoader(load_fn=load, cache_key_fn=lambda score: score.id)


@dataclass
class ApiContext:
    """Built once per request after authentication; resolvers read it from `info.context`."""

    principal: Principal
    backend: Backend
    request_id: str
    _scores: dict[str, asyncio.Future[CurrentScore | None]] = field(
        default_factory=dict, init=False
    )
    _explanations: DataLoader[CurrentScore, ExplanationView] | None = field(
        default=None, init=False
    )
    _states: DataLoader[CurrentScore, ScoreStateView] | None = field(default=None, init=False)

    async def score(self, scorer: str) -> CurrentScore | None:
        """The current score of `scorer` if this token may read it (None otherwise: not
        granted, not enabled and no score look alike). Read, authorized and logged once per
        request however many fields ask. Fields asking for different scorers run
        concurrently, so their access-log entries share one commit: no batching loader is
        needed (the member's current scores came with the token)."""
        shared = self._scores.get(scorer)
        if shared is not None:
            return await shared
        shared = self._scores[scorer] = asyncio.get_running_loop().create_future()
        try:
            found = (await self.backend.scores(self.principal, [scorer])).get(scorer)
        except asyncio.CancelledError:
            shared.cancel()
            raise
        except Exception as exc:
            shared.set_exception(exc)
            shared.exception()  # the raising caller reports it; other waiters get it too
            raise
        shared.set_result(found)
        return found

    def known_score(self, scorer: str, view: CurrentScore) -> None:
        """Remember a score this request already read (and logged) under another field."""
        if scorer not in self._scores:
            done = asyncio.get_running_loop().create_future()
            done.set_result(view)
            self._scores[scorer] = done

    @property
    def explanations(self) -> DataLoader[CurrentScore, ExplanationView]:
        if self._explanations is None:
            self._explanations = _explanation_loader(self.backend, self.principal)
        return self._explanations

    @property
    def states(self) -> DataLoader[CurrentScore, ScoreStateView]:
        if self._states is None:
            self._states = _state_loader(self.backend, self.principal)
        return self._states

    def has_scope(self, scope: str) -> bool:
        return scope in self.principal.scopes
