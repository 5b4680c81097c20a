"""What one score was computed from, kept (sealed) with it: the exact input records, `now`,
which kinds the scorer read and whether it got text, which member record each ref is, and
which distribution (name, version, content hash) the scorer came from.

Change decomposition re-runs the scorer on these (coop.scoring.causes) and proof bundles
publish them. Stored compressed: a member's records repeat from score to score.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from coop.scoring import protocol
from coop.scoring.spec import InputRecord

FORMAT = 1


@dataclass(frozen=True)
class Distribution:
    """The installed distribution a scorer ran from (coop.scoring.disthash)."""

    name: str
    version: str
    sha256: str  # the content hash; "" for an editable install

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "sha256": self.sha256}


@dataclass(frozen=True)
class ScoreInputs:
    now: datetime
    reads: tuple[str, ...]
    needs_text: bool
    records: tuple[InputRecord, ...]
    record_ids: Mapping[str, str] = field(default_factory=dict)  # ref -> member record id
    distribution: Distribution | None = None  # None on scores stored before coop kept it

    def by_ref(self) -> dict[str, InputRecord]:
        return {r.ref: r for r in self.records}


def to_json(inputs: ScoreInputs) -> dict[str, Any]:
    data = {
        "format": FORMAT,
        "now": inputs.now.isoformat(),
        "reads": list(inputs.reads),
        "needs_text": inputs.needs_text,
        "records": json.loads(protocol.canonical_records(inputs.records)),
        "record_ids": dict(sorted(inputs.record_ids.items())),
    }
    if inputs.distribution is not None:
        data["distribution"] = inputs.distribution.to_json()
    return data


def distribution_from_json(data: Any) -> Distribution | None:
    if data is None:
        return None
    return Distribution(str(data["name"]), str(data["version"]), str(data["sha256"]))


def from_json(data: Mapping[str, Any]) -> ScoreInputs:
    if data.get("format") != FORMAT:
        raise ValueError("unknown inputs format")
    return ScoreInputs(
        now=datetime.fromisoformat(str(data["now"])),
        reads=tuple(str(k) for k in data["reads"]),
        needs_text=bool(data["needs_text"]),
        records=tuple(protocol.record_from_json(item) for item in data["records"]),
        record_ids={str(k): str(v) for k, v in dict(data.get("record_ids", {})).items()},
        distribution=distribution_from_json(data.get("distribution")),
    )


def pack(inputs: ScoreInputs) -> bytes:
    """Compressed canonical JSON, ready to seal."""
    text = json.dumps(to_json(inputs), separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return zlib.compress(text.encode(), 6)


def unpack(blob: bytes) -> ScoreInputs:
    return from_json(json.loads(zlib.decompress(blob)))


def same_content(a: InputRecord, b: InputRecord) -> bool:
    return protocol.record_to_json(a) == protocol.record_to_json(b)


def sorted_records(records: Sequence[InputRecord]) -> tuple[InputRecord, ...]:
    return tuple(sorted(records, key=lambda r: r.ref))
