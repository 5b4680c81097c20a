"""`coop plugins run`: one installed scorer, run in the server's sandbox on records from a
JSON file, so an author sees exactly what the server would store (or why it would not)."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from coop.errors import InvalidInputError
from coop.scoring.feeding import unfed_kinds, visible
from coop.scoring.sandbox import Sandbox, SandboxConfig
from coop.scoring.spec import InputRecord, ScoreResult

MAX_FILE_BYTES = 16 * 1024 * 1024


def parse_now(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    try:
        now = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(f"--now {text!r} is not an ISO 8601 date-time") from None
    return now if now.tzinfo else now.replace(tzinfo=UTC)


def _record(item: object, index: int) -> InputRecord:
    where = f"record {index}"
    if not isinstance(item, dict):
        raise InvalidInputError(f"{where}: expected an object with kind and occurred_at")
    try:
        occurred = parse_now(str(item["occurred_at"]))
        counts = {str(k): int(v) for k, v in (item.get("counts") or {}).items()}
        return InputRecord(
            ref=str(item.get("ref", f"r{index}")),
            kind=str(item["kind"]),
            occurred_at=occurred,
            counts=counts,
            text=None if item.get("text") is None else str(item["text"]),
            network=None if item.get("network") is None else str(item["network"]),
        )
    except KeyError as exc:
        raise InvalidInputError(f"{where}: missing {exc.args[0]}") from None
    except InvalidInputError as exc:
        raise InvalidInputError(f"{where}: {exc.message.replace('--now', 'occurred_at')}") from None
    except (TypeError, ValueError, AttributeError):
        raise InvalidInputError(f"{where}: counts must map names to whole numbers") from None


def load_records(path: Path) -> list[InputRecord]:
    """Records from a JSON file: a list of {kind, occurred_at, counts?, text?, network?, ref?}."""
    if path.stat().st_size > MAX_FILE_BYTES:
        raise InvalidInputError(f"{path} is larger than 16 MiB")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{path} is not JSON: {exc}") from None
    if not isinstance(data, list):
        raise InvalidInputError(f"{path} must hold a JSON list of records")
    return [_record(item, i) for i, item in enumerate(data)]


async def run_once(
    config: SandboxConfig, *, scorer: str, records: list[InputRecord], now: datetime
) -> tuple[ScoreResult, list[str]]:
    """The result, and the kinds the scorer reads that the records lack. Like the server,
    the scorer gets only the kinds it reads, and text only when it asks for it."""
    sandbox = Sandbox(config)
    try:
        await sandbox.start()
        meta = sandbox.meta(scorer)
        result = await sandbox.run(scorer=scorer, records=visible(meta, records), now=now)
        return result, unfed_kinds(meta.reads, (r.kind for r in records))
    finally:
        await sandbox.close()


def result_json(result: ScoreResult) -> dict[str, Any]:
    return {**asdict(result), "breakdown": dict(result.breakdown)}
