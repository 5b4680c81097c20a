"""The per-request context: who calls, the backend, the request id, the DataLoaders."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from strawberry.dataloader import DataLoader

from coop.api.backend import Backend, ExplanationView, Principal, ScoreView


def _score_loader(backend: Backend, principal: Principal) -> DataLoader[str, ScoreView | None]:
    async def load(scorers: Sequence[str]) -> list[ScoreView | None]:
        found = await backend.scores(principal, list(scorers))
        return [found.get(name) for name in scorers]

    return DataLoader(load_fn=load)


def _explanation_loader(
    backend: Backend, principal: Principal
) -> DataLoader[ScoreView, ExplanationView]:
    async def load(scores: Sequence[ScoreView]) -> list[ExplanationView]:
        found = await backend.explain(principal, scores)
        empty = ExplanationView(contributions=[], reasons=[])
        return [found.get(score.id, empty) for score in scores]

    return DataLoader(load_fn=load, cache_key_fn=lambda score: score.id)


@dataclass
class ApiContext:
    """Built once per request after authentication; resolvers read it from `info.context`.
    The DataLoaders are made on first use (most requests need one or none)."""

    principal: Principal
    backend: Backend
    request_id: str
    _scores: DataLoader[str, ScoreView | None] | None = field(default=None, init=False)
    _explanations: DataLoader[ScoreView, ExplanationView] | None = field(default=None, init=False)

    @property
    def scores(self) -> DataLoader[str, ScoreView | None]:
        if self._scores is None:
            self._scores = _score_loader(self.backend, self.principal)
        return self._scores

    @property
    def explanations(self) -> DataLoader[ScoreView, ExplanationView]:
        if self._explanations is None:
            self._explanations = _explanation_loader(self.backend, self.principal)
        return self._explanations

    def has_scope(self, scope: str) -> bool:
        return scope in self.principal.scopes
