"""The per-request context: who calls, the backend, the request id, the per-request reads."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from coop.api.backend import Backend, ExplanationView, ScoreStateView
from coop.consent.bearer import CurrentScore, Principal

V = TypeVar("V")


class Batch(Generic[V]):
    """One read about current scores already read (their explanations, or their changes and
    staleness), batched per request: the scores fields ask for while they run concurrently
    are read together in one call when the loop next turns, each score once per request; a
    failed read fails every field that waits for it. What a DataLoader does here, with one
    future per score and one task per batch (coroutines of graphql-core and of the plans
    alike call `load`)."""

    __slots__ = ("_found", "_missing", "_read", "_tasks", "_waiting")

    def __init__(
        self,
        read: Callable[[Sequence[CurrentScore]], Awaitable[Mapping[uuid.UUID, V]]],
        missing: V,
    ) -> None:
        self._read = read
        self._missing = missing  # the answer for a score the read did not find
        self._found: dict[uuid.UUID, asyncio.Future[V]] = {}
        self._waiting: list[tuple[CurrentScore, asyncio.Future[V]]] = []
        self._tasks: set[asyncio.Task[None]] = set()  # the loop holds tasks weakly

    def load(self, score: CurrentScore) -> asyncio.Future[V]:
        found = self._found.get(score.id)
        if found is None or found.cancelled():
            loop = asyncio.get_running_loop()
            found = self._found[score.id] = loop.create_future()
            if not self._waiting:
                loop.call_soon(self._dispatch)
            self._waiting.append((score, found))
        return found

    def _dispatch(self) -> None:
        waiting, self._waiting = self._waiting, []
        task = asyncio.get_running_loop().create_task(self._settle(waiting))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _settle(self, waiting: list[tuple[CurrentScore, asyncio.Future[V]]]) -> None:
        if all(future.cancelled() for _, future in waiting):
            return  # nobody waits: no read
        try:
            found = await self._read([score for score, _ in waiting])
        except Exception as exc:
            for _, future in waiting:
                if not future.done():
                    future.set_exception(exc)
            return
        for score, future in waiting:
            if not future.done():
                future.set_result(found.get(score.id, self._missing))


@dataclass
class ApiContext:
    """Built once per request after authentication; resolvers read it from `info.context`."""

    principal: Principal
    backend: Backend
    request_id: str
    _scores: dict[str, asyncio.Future[CurrentScore | None]] = field(
        default_factory=dict, init=False
    )
    _explanations: Batch[ExplanationView] | None = field(default=None, init=False)
    _states: Batch[ScoreStateView] | None = field(default=None, init=False)

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
    def explanations(self) -> Batch[ExplanationView]:
        """The explanations of scores this request read (none found: empty)."""
        if self._explanations is None:
            principal, explain = self.principal, self.backend.explain
            empty = ExplanationView(contributions=[], reasons=[])
            self._explanations = Batch(lambda scores: explain(principal, scores), empty)
        return self._explanations

    @property
    def states(self) -> Batch[ScoreStateView]:
        """The changes and staleness of scores this request read (none found: fresh)."""
        if self._states is None:
            principal, states = self.principal, self.backend.score_states
            fresh = ScoreStateView(change=None, stale=False)
            self._states = Batch(lambda scores: states(principal, scores), fresh)
        return self._states

    def has_scope(self, scope: str) -> bool:
        return scope in self.principal.scopes
