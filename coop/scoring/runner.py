"""Running a scorer: the `Runner` interface, the host-side output check shared by every
runner, and `InProcessRunner`, the unisolated twin of the sandbox (for `coop.testing` and
benchmark baselines only: never in the server)."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from coop.errors import ScorerOutputError, ScorerUnavailableError
from coop.scoring import protocol
from coop.scoring.inputs import Distribution
from coop.scoring.spec import InputRecord, ScoreResult
from coop.scoring.validate import (
    OutputViolation,
    ScorerMeta,
    check_contract,
    parse_output,
    result_to_json,
)

log = logging.getLogger("coop.scoring")


class Runner(Protocol):
    """Runs one scorer on one member's records; raises ScorerError subclasses."""

    def meta(self, name: str) -> ScorerMeta: ...

    def distribution(self, name: str) -> Distribution | None:
        """The installed distribution the scorer runs from (None when not known)."""
        ...

    async def run(
        self, *, scorer: str, records: Sequence[InputRecord], now: datetime
    ) -> ScoreResult: ...


def refs_of(records: Sequence[InputRecord]) -> frozenset[str]:
    return frozenset(r.ref for r in records)


def validated(raw: bytes, meta: ScorerMeta, records: Sequence[InputRecord]) -> ScoreResult:
    try:
        return parse_output(raw, meta=meta, refs=refs_of(records))
    except OutputViolation as exc:
        log.warning("scorer output rejected", extra={"plugin": meta.name, "code": exc.code})
        raise ScorerOutputError(f"The scorer's result was rejected: {exc}", code=exc.code) from None


@dataclass
class InProcessRunner:
    """Runs scorer objects in this process, validated like the sandbox. NOT isolated:
    only for `coop.testing` and benchmark baselines."""

    scorers: dict[str, Any] = field(default_factory=dict)

    def add(self, scorer: Any) -> ScorerMeta:
        obj = scorer() if isinstance(scorer, type) else scorer
        meta = check_contract(obj)
        self.scorers[meta.name] = (obj, meta)
        return meta

    def meta(self, name: str) -> ScorerMeta:
        try:
            meta: ScorerMeta = self.scorers[name][1]
        except KeyError:
            raise ScorerUnavailableError() from None
        return meta

    def distribution(self, name: str) -> Distribution | None:
        return None  # scorer objects handed over in-process come from no known install

    def run_sync(
        self, *, scorer: str, records: Sequence[InputRecord], now: datetime
    ) -> ScoreResult:
        obj, meta = self.scorers[scorer]
        try:
            # Round-trip through the wire encoding, exactly as a sandboxed child sees it.
            _, when, decoded = protocol.decode_job(
                protocol.encode_job(scorer=scorer, records=records, now=now)
            )
            data = json.dumps(result_to_json(obj.score(decoded, when))).encode()
        except OutputViolation as exc:
            raise ScorerOutputError(f"The scorer's result was rejected: {exc}") from None
        return validated(data, meta, records)

    async def run(
        self, *, scorer: str, records: Sequence[InputRecord], now: datetime
    ) -> ScoreResult:
        return self.run_sync(scorer=scorer, records=records, now=now)
