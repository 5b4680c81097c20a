"""The wire formats between the server, the template process and one scoring child.

Control messages are length-prefixed JSON frames. A job's input is one canonical JSON
document (also the source of a score's `inputs_digest`); its output is one JSON object.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from coop.scoring.spec import InputRecord

HEADER = struct.Struct(">I")
MAX_FRAME = 4 * 1024 * 1024


def frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":")).encode()
    return HEADER.pack(len(body)) + body


def split_frames(buffer: bytearray) -> list[dict[str, Any]]:
    """Pop every complete frame from `buffer` (in place)."""
    out: list[dict[str, Any]] = []
    while len(buffer) >= HEADER.size:
        (size,) = HEADER.unpack_from(buffer)
        if size > MAX_FRAME:
            raise ValueError("control frame too large")
        if len(buffer) < HEADER.size + size:
            break
        body = bytes(buffer[HEADER.size : HEADER.size + size])
        del buffer[: HEADER.size + size]
        out.append(json.loads(body))
    return out


def record_to_json(record: InputRecord) -> list[Any]:
    """A record as a compact JSON array: [ref, kind, occurred_at, counts, text], plus its
    network when it has one (so records without one encode, and digest, as before)."""
    counts = {str(k): int(v) for k, v in sorted(record.counts.items())}
    item = [record.ref, record.kind, record.occurred_at.isoformat(), counts, record.text]
    return [*item, record.network] if record.network else item


def record_from_json(data: list[Any]) -> InputRecord:
    ref, kind, occurred_at, counts, text, *rest = data
    network = rest[0] if rest and isinstance(rest[0], str) else None
    return InputRecord(ref, kind, datetime.fromisoformat(occurred_at), counts, text, network)


def canonical_records(records: Iterable[InputRecord]) -> bytes:
    """The records in a stable order and encoding (sorted by ref)."""
    items = sorted((record_to_json(r) for r in records), key=lambda item: str(item[0]))
    return json.dumps(items, separators=(",", ":"), ensure_ascii=False).encode()


class EncodedRecords(list[InputRecord]):
    """Input records that carry their canonical encoding, so the digest and the job that
    the runner sends share one encoding (runners need not know)."""

    def __init__(self, records: Iterable[InputRecord]) -> None:
        super().__init__(records)
        self.canonical = canonical_records(self)


def _canonical(records: Sequence[InputRecord]) -> bytes:
    if isinstance(records, EncodedRecords):
        return records.canonical
    return canonical_records(records)


def inputs_digest(*, scorer: str, records: Sequence[InputRecord]) -> str:
    """sha256 over the scorer name and its canonical input records (not `now`)."""
    h = hashlib.sha256(b"coop-scoring-input-v1\x00" + scorer.encode() + b"\x00")
    h.update(_canonical(records))
    return h.hexdigest()


def encode_job(*, scorer: str, records: Sequence[InputRecord], now: datetime) -> bytes:
    head = json.dumps({"scorer": scorer, "now": now.isoformat()}, separators=(",", ":"))
    return head.encode() + b"\n" + _canonical(records)


def decode_job(raw: bytes) -> tuple[str, datetime, list[InputRecord]]:
    head, _, body = raw.partition(b"\n")
    meta = json.loads(head)
    records = [record_from_json(item) for item in json.loads(body or b"[]")]
    return meta["scorer"], datetime.fromisoformat(meta["now"]), records
