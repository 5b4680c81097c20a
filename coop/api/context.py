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
    """Built once per request after authentication; resolvers read it from `info.context`."""

    principal: Principal
    backend: Backend
    request_id: str
    scores: DataLoader[str, ScoreView | None] = field(init=False)
    explanations: DataLoader[ScoreView, ExplanationView] = field(init=False)

    def __post_init__(self) -> None:
        self.scores = _score_loader(self.backend, self.principal)
        self.explanations = _explanation_loader(self.backend, self.principal)

    def has_scope(self, scope: str) -> bool:
        return scope in self.principal.scopes
