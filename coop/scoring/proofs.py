"""Proof bundles: one score as a document anyone can check by re-running its scorer.

A bundle holds the exact inputs the scorer received (records, `now`, the kinds it read,
whether it got text, which member record each ref is), the scorer's name and version, the
distribution it ran from (name, version, content hash), and the result the scorer returned
(value, contributions, reasons, breakdown). `coop verify` (coop.scoring.verify) re-runs it.
The format is documented in docs/export.md#proof-bundles and in export.schema.json
(`#/$defs/proof_bundle`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from coop.scoring import inputs
from coop.scoring.spec import InputRecord, ScoreResult

FORMAT = "coop-score-proof"
VERSION = 1


class BundleError(ValueError):
    """A document that is not a well-formed proof bundle (the message says where)."""


@dataclass(frozen=True)
class Bundle:
    scorer: str
    scorer_version: str
    distribution: inputs.Distribution | None
    inputs: inputs.ScoreInputs
    result: Mapping[str, Any]  # checked_result's shape
    stale: bool = False
    score_id: str = ""


def checked_result(result: ScoreResult) -> dict[str, Any]:
    """What a re-run must reproduce: everything the scorer returned."""
    return {
        "value": result.value,
        "contributions": [
            {"amount": c.amount, "reason": c.reason, "ref": c.ref} for c in result.contributions
        ],
        "reasons": list(result.reasons),
        "breakdown": dict(result.breakdown),
    }


def stored_result(value: float, explanation: Mapping[str, Any]) -> dict[str, Any]:
    """The same shape, from a stored score and its (opened) explanation."""
    return {
        "value": value,
        "contributions": [
            {"amount": c["amount"], "reason": c["reason"], "ref": c.get("ref")}
            for c in explanation.get("contributions", [])
        ],
        "reasons": list(explanation.get("reasons", [])),
        "breakdown": dict(explanation.get("breakdown", {})),
    }


def build(
    *,
    score_id: str,
    scorer: str,
    version: str,
    computed_at: datetime,
    value: float,
    explanation: Mapping[str, Any],
    used: inputs.ScoreInputs,
    stale_reason: str,
) -> dict[str, Any]:
    used_json = inputs.to_json(used)
    used_json.pop("distribution", None)  # stated once, at the top
    return {
        "format": FORMAT,
        "version": VERSION,
        "score": {
            "id": score_id,
            "computed_at": computed_at.isoformat(),
            "stale": bool(stale_reason),
            "stale_reason": stale_reason,
        },
        "scorer": {"name": scorer, "version": version},
        "distribution": used.distribution.to_json() if used.distribution else None,
        "inputs": used_json,
        "result": stored_result(value, explanation),
    }


# -- reading an untrusted bundle ----------------------------------------------------------------


NAMES = {str: "a string", dict: "an object", list: "a list", bool: "true or false"}


def _need(data: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = data.get(key)
    if not isinstance(value, kind):
        raise BundleError(f"{where}.{key} is missing or not {NAMES[kind]}")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BundleError(f"{where} is not a finite number")
    return float(value)


def _when(text: Any, where: str) -> datetime:
    try:
        when = datetime.fromisoformat(str(text))
    except ValueError:
        raise BundleError(f"{where} is not an ISO 8601 date-time") from None
    if when.tzinfo is None:
        raise BundleError(f"{where} has no time zone")
    return when


def _record(item: Any, index: int) -> InputRecord:
    where = f"inputs.records[{index}]"
    if not isinstance(item, list) or len(item) not in (5, 6):
        raise BundleError(f"{where} is not [ref, kind, occurred_at, counts, text(, network)]")
    ref, kind, occurred, counts, text, *rest = item
    if not isinstance(ref, str) or not isinstance(kind, str):
        raise BundleError(f"{where}: ref and kind must be strings")
    if not isinstance(counts, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in counts.values()
    ):
        raise BundleError(f"{where}: counts must map names to whole numbers")
    if text is not None and not isinstance(text, str):
        raise BundleError(f"{where}: text must be a string or null")
    network = rest[0] if rest else None
    if network is not None and not isinstance(network, str):
        raise BundleError(f"{where}: network must be a string")
    return InputRecord(ref, kind, _when(occurred, f"{where}.occurred_at"), counts, text, network)


def _inputs(
    data: Mapping[str, Any], distribution: inputs.Distribution | None
) -> inputs.ScoreInputs:
    where = "inputs"
    if data.get("format") != inputs.FORMAT:
        raise BundleError(f"inputs.format must be {inputs.FORMAT}")
    reads = _need(data, "reads", list, where)
    if not all(isinstance(k, str) for k in reads):
        raise BundleError("inputs.reads must be a list of strings")
    records = tuple(_record(item, i) for i, item in enumerate(_need(data, "records", list, where)))
    ids = data.get("record_ids", {})
    if not isinstance(ids, dict):
        raise BundleError("inputs.record_ids is not an object")
    return inputs.ScoreInputs(
        now=_when(data.get("now"), "inputs.now"),
        reads=tuple(reads),
        needs_text=_need(data, "needs_text", bool, where),
        records=records,
        record_ids={str(k): str(v) for k, v in ids.items()},
        distribution=distribution,
    )


def _result(data: Mapping[str, Any]) -> dict[str, Any]:
    contributions = []
    for i, c in enumerate(_need(data, "contributions", list, "result")):
        where = f"result.contributions[{i}]"
        if not isinstance(c, dict) or not isinstance(c.get("reason"), str):
            raise BundleError(f"{where} needs amount, reason and ref")
        ref = c.get("ref")
        if ref is not None and not isinstance(ref, str):
            raise BundleError(f"{where}.ref must be a string or null")
        contributions.append(
            {
                "amount": _number(c.get("amount"), f"{where}.amount"),
                "reason": c["reason"],
                "ref": ref,
            }
        )
    reasons = _need(data, "reasons", list, "result")
    if not all(isinstance(r, str) for r in reasons):
        raise BundleError("result.reasons must be a list of strings")
    breakdown = _need(data, "breakdown", dict, "result")
    return {
        "value": _number(data.get("value"), "result.value"),
        "contributions": contributions,
        "reasons": reasons,
        "breakdown": {str(k): _number(v, f"result.breakdown.{k}") for k, v in breakdown.items()},
    }


def _distribution(data: Any) -> inputs.Distribution | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise BundleError("distribution is not an object or null")
    name, version, sha = (
        _need(data, k, str, "distribution") for k in ("name", "version", "sha256")
    )
    return inputs.Distribution(name, version, sha)


def parse(data: Any) -> Bundle:
    """A bundle from decoded JSON; BundleError says what is wrong."""
    if not isinstance(data, dict):
        raise BundleError("a proof bundle is a JSON object")
    if data.get("format") != FORMAT:
        raise BundleError(f"not a proof bundle (format is not {FORMAT!r})")
    if data.get("version") != VERSION:
        raise BundleError(f"proof bundle version {data.get('version')!r} is not {VERSION}")
    scorer = _need(data, "scorer", dict, "bundle")
    given = data.get("score")
    score: Mapping[str, Any] = given if isinstance(given, dict) else {}
    distribution = _distribution(data.get("distribution"))
    return Bundle(
        scorer=_need(scorer, "name", str, "scorer"),
        scorer_version=_need(scorer, "version", str, "scorer"),
        distribution=distribution,
        inputs=_inputs(_need(data, "inputs", dict, "bundle"), distribution),
        result=_result(_need(data, "result", dict, "bundle")),
        stale=bool(score.get("stale")),
        score_id=str(score.get("id", "")),
    )
