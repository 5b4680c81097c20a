"""A stored score's change since the previous one: computed (via coop.scoring.causes) when a
score is stored, sealed with it, and read back as `Change`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from coop.scoring import causes, inputs, protocol
from coop.scoring.runner import Runner
from coop.scoring.spec import InputRecord

FORMAT = 2
LEGACY_REASON = (
    "This change was recorded before coop kept the inputs of each score, so it cannot be "
    "broken down."
)


@dataclass(frozen=True)
class Change:
    """Why the score moved since the previous one: causes that add up to `delta`."""

    previous_value: float
    delta: float
    previous_version: str
    version: str
    causes: tuple[causes.Cause, ...]
    unversioned: bool = False  # same inputs and version gave another value

    @property
    def main_kind(self) -> str:
        return self.causes[0].kind if self.causes else ""


def rerun(runner: Runner, scorer: str) -> causes.Run:
    """A scorer's value on counterfactual records, through the same runner (the sandbox)."""

    async def run(records: Sequence[InputRecord], now: datetime) -> float:
        encoded = protocol.EncodedRecords(records)
        return (await runner.run(scorer=scorer, records=encoded, now=now)).value

    return run


async def compute(
    *,
    runner: Runner,
    scorer: str,
    before: causes.Side | None,
    previous_value: float,
    previous_version: str,
    after: causes.Side,
) -> dict[str, Any]:
    """The change record to seal with a new score (`before` is None when the previous score
    kept no inputs: its change is one unexplained cause)."""
    delta = after.value - previous_value
    if before is None:
        found = causes.Decomposition(causes.unexplained(delta, LEGACY_REASON))
    else:
        found = await causes.decompose(before=before, after=after, run=rerun(runner, scorer))
    return {
        "format": FORMAT,
        "previous_value": previous_value,
        "value": after.value,
        "delta": delta,
        "previous_version": previous_version,
        "version": after.version,
        "causes": causes.to_json(found.causes),
        "unversioned": found.unversioned,
    }


def from_json(data: Mapping[str, Any]) -> Change:
    if data.get("format") != FORMAT:  # stored by an older coop: labels, no decomposition
        delta = float(data["delta"])
        return Change(
            previous_value=float(data["previous_value"]),
            delta=delta,
            previous_version=str(data.get("previous_version", "")),
            version=str(data.get("version", "")),
            causes=causes.unexplained(delta, LEGACY_REASON),
        )
    return Change(
        previous_value=float(data["previous_value"]),
        delta=float(data["delta"]),
        previous_version=str(data["previous_version"]),
        version=str(data["version"]),
        causes=causes.largest_first(causes.from_json(data["causes"])),
        unversioned=bool(data.get("unversioned", False)),
    )


def side(value: float, version: str, packed: bytes | None) -> causes.Side | None:
    if packed is None:
        return None
    return causes.Side(value=value, version=version, inputs=inputs.unpack(packed))
