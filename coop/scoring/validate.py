"""Checks shared by the host and `coop.testing`: a scorer's declared contract and its output.

Everything a plugin hands back is untrusted. `parse_output` is the one gate between a
scorer's JSON and coop: finite numbers inside the declared range, bounded explanations,
references only to records of this run, no unknown fields.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, fields
from types import SimpleNamespace
from typing import Any

from coop.connectors.spec import KINDS
from coop.scoring import declared, spec
from coop.scoring.bands import check_bands
from coop.types import is_web_url

MAX_OUTPUT_BYTES = 1024 * 1024

_NAME = re.compile(spec.NAME_PATTERN)
_RESULT_FIELDS = {"value", "contributions", "reasons", "breakdown"}
_CONTRIBUTION_FIELDS = {"amount", "reason", "ref"}


class ContractViolation(Exception):
    """A scorer's declaration breaks the contract; the message says which member and why."""


class OutputViolation(Exception):
    """A scorer's output breaks the contract (`code` is invalid_plugin_output or
    output_too_large); the message names the rule, never the member's data."""

    def __init__(self, message: str, code: str = "invalid_plugin_output") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ScorerMeta:
    """What coop knows about a loaded scorer (plain data: crosses process boundaries)."""

    name: str
    version: str
    title: str
    description: str
    reads: tuple[str, ...]
    range: tuple[float, float]
    needs_text: bool
    homepage: str
    bands: tuple[float, ...] = ()  # declared band edges; () means ten equal bands of `range`
    # Kinds read with only some fields, in `reads` order (kinds read whole are not listed).
    fields: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def read_fields(self) -> dict[str, frozenset[str]]:
        """Each kind it reads with the fields it gets (coop.scoring.declared)."""
        return declared.reads_of(self.reads, dict(self.fields))

    def visible(self, record: spec.InputRecord) -> spec.InputRecord:
        """`record` as this scorer gets it: only its declared fields, text only if asked."""
        fields = dict(self.fields).get(record.kind, declared.ALL)
        return declared.visible(record, frozenset(fields), self.needs_text)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "title": self.title,
            "description": self.description,
            "reads": list(self.reads),
            "range": list(self.range),
            "needs_text": self.needs_text,
            "homepage": self.homepage,
            "bands": list(self.bands),
            "fields": {kind: list(names) for kind, names in self.fields},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ScorerMeta:
        low, high = data["range"]
        return cls(
            name=str(data["name"]),
            version=str(data["version"]),
            title=str(data["title"]),
            description=str(data["description"]),
            reads=tuple(str(k) for k in data["reads"]),
            range=(float(low), float(high)),
            needs_text=bool(data["needs_text"]),
            homepage=str(data["homepage"]),
            bands=tuple(float(e) for e in data.get("bands", ())),
            fields=tuple(
                (str(kind), tuple(str(f) for f in names))
                for kind, names in dict(data.get("fields") or {}).items()
            ),
        )


def _text(obj: object, attr: str, *, required: bool = True, limit: int = 2000) -> str:
    value = getattr(obj, attr, None if required else "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise ContractViolation(f"`{attr}` must be a non-empty string")
    if len(value) > limit:
        raise ContractViolation(f"`{attr}` is longer than {limit} characters")
    return value


def check_fields(fields: object, reads: tuple[str, ...]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """A scorer's optional `fields` declaration, normalised: kinds in `reads` order, fields
    in spec.FIELDS order, kinds declared with every field left out (they read everything)."""
    if fields is None:
        return ()
    if not isinstance(fields, Mapping):
        raise ContractViolation(
            "`fields` must map kinds in `reads` to tuples of field names, "
            'e.g. {"post": ("occurred_at",)}'
        )
    known = ", ".join(spec.FIELDS)
    for kind, names in fields.items():
        if kind not in reads:
            raise ContractViolation(f"`fields` names {kind!r}, which is not in `reads`")
        if not isinstance(names, tuple | list) or not all(isinstance(n, str) for n in names):
            raise ContractViolation(f"`fields[{kind!r}]` must be a tuple of field names ({known})")
        unknown = [n for n in names if n not in spec.FIELDS]
        if unknown:
            hint = " (text is `needs_text`)" if "text" in unknown else ""
            raise ContractViolation(
                f"`fields[{kind!r}]` names unknown fields: {', '.join(unknown)}; "
                f"known: {known}{hint}"
            )
        if "occurred_at" not in names:
            raise ContractViolation(
                f"`fields[{kind!r}]` must include 'occurred_at': every record comes with its date"
            )
    return tuple(
        (kind, declared.ordered(fields[kind]))
        for kind in reads
        if kind in fields and set(fields[kind]) < declared.ALL
    )


def check_contract(scorer: object, *, entry_point_name: str | None = None) -> ScorerMeta:
    """Validate a loaded scorer's declaration; raise ContractViolation on the first breach."""
    api_version = getattr(scorer, "api_version", None)
    if api_version != spec.API_VERSION:
        raise ContractViolation(
            f"`api_version` is {api_version!r}; this coop supports {spec.API_VERSION}"
        )
    name = _text(scorer, "name", limit=40)
    if not _NAME.fullmatch(name):
        raise ContractViolation(f"`name` must match {spec.NAME_PATTERN}")
    if entry_point_name is not None and name != entry_point_name:
        raise ContractViolation("`name` must equal the entry point's name")
    version = _text(scorer, "version", limit=64)
    title = _text(scorer, "title", limit=120)
    description = _text(scorer, "description")
    reads = getattr(scorer, "reads", None)
    if not isinstance(reads, tuple | list) or not reads:
        raise ContractViolation("`reads` must be a non-empty tuple of record kinds")
    unknown = [k for k in reads if k not in KINDS]
    if unknown:
        raise ContractViolation(f"`reads` names unknown kinds: {', '.join(map(str, unknown))}")
    kinds = tuple(dict.fromkeys(str(k) for k in reads))
    fields = check_fields(getattr(scorer, "fields", None), kinds)
    declared_range = getattr(scorer, "range", None)
    if (
        not isinstance(declared_range, tuple | list)
        or len(declared_range) != 2
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in declared_range)
    ):
        raise ContractViolation("`range` must be a pair of numbers (low, high)")
    low, high = float(declared_range[0]), float(declared_range[1])
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ContractViolation("`range` must be finite with low < high")
    needs_text = getattr(scorer, "needs_text", False)
    if not isinstance(needs_text, bool):
        raise ContractViolation("`needs_text` must be a bool")
    homepage = _text(scorer, "homepage", required=False, limit=500)
    if homepage and not is_web_url(homepage):
        raise ContractViolation("`homepage` must be an absolute http(s) URL")
    bands = getattr(scorer, "bands", None)
    if bands is not None and not (isinstance(bands, tuple | list) and not bands):  # () = default
        problem = check_bands(bands, (low, high))
        if problem:
            raise ContractViolation(problem)
    if not callable(getattr(scorer, "score", None)):
        raise ContractViolation("`score` must be callable")
    return ScorerMeta(
        name=name,
        version=version,
        title=title,
        description=description,
        reads=kinds,
        range=(low, high),
        needs_text=needs_text,
        homepage=homepage,
        bands=tuple(float(e) for e in bands or ()),
        fields=fields,
    )


def _declared_score(*args: object) -> None:
    """Stands in for `score` in a declaration reported as data (it was callable there)."""


def reported_meta(data: object, *, entry_point_name: str) -> ScorerMeta:
    """A declaration that a sandboxed import reported as JSON: untrusted, so it passes the
    same checks as `check_contract` (and has exactly ScorerMeta's fields)."""
    names = {f.name for f in fields(ScorerMeta)}
    if not isinstance(data, Mapping) or set(data) != names:
        raise ContractViolation("the reported declaration is malformed")
    stated = SimpleNamespace(**data, api_version=spec.API_VERSION, score=_declared_score)
    return check_contract(stated, entry_point_name=entry_point_name)


def result_to_json(result: object) -> dict[str, Any]:
    """Turn what `score` returned into the wire form (no validation: the host does that)."""
    if not isinstance(result, spec.ScoreResult):
        raise OutputViolation("score() must return a ScoreResult")
    return {
        "value": result.value,
        "contributions": [
            {"amount": c.amount, "reason": c.reason, "ref": c.ref}
            if isinstance(c, spec.Contribution)
            else c
            for c in result.contributions
        ],
        "reasons": list(result.reasons),
        "breakdown": dict(result.breakdown),
    }


def _reject_constant(token: str) -> float:
    raise OutputViolation(f"non-finite number {token}")


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise OutputViolation(f"{what} must be a number")
    number = float(value)
    if not math.isfinite(number):
        raise OutputViolation(f"{what} must be finite")
    return number


def _short_text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise OutputViolation(f"{what} must be a string")
    if len(value) > spec.MAX_TEXT:
        raise OutputViolation(f"{what} is longer than {spec.MAX_TEXT} characters")
    return value


def parse_output(raw: bytes | str, *, meta: ScorerMeta, refs: Collection[str]) -> spec.ScoreResult:
    """Parse and validate one scorer output. `refs`: the references given in this run."""
    if len(raw) > MAX_OUTPUT_BYTES:
        raise OutputViolation("output is larger than 1 MiB", code="output_too_large")
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
    except OutputViolation:
        raise
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise OutputViolation("output is not JSON") from None
    return check_result(data, meta=meta, refs=refs)


def check_result(data: object, *, meta: ScorerMeta, refs: Collection[str]) -> spec.ScoreResult:
    """Validate the decoded output and rebuild it as a ScoreResult."""
    if not isinstance(data, dict):
        raise OutputViolation("output must be an object")
    extra = set(data) - _RESULT_FIELDS
    if extra or "value" not in data:
        raise OutputViolation("output must have `value` and only known fields")
    value = _number(data["value"], "value")
    low, high = meta.range
    if not low <= value <= high:
        raise OutputViolation(f"value {value:g} is outside the declared range [{low:g}, {high:g}]")
    contributions = data.get("contributions", [])
    if not isinstance(contributions, list) or len(contributions) > spec.MAX_CONTRIBUTIONS:
        raise OutputViolation(f"at most {spec.MAX_CONTRIBUTIONS} contributions")
    known = refs if isinstance(refs, set | frozenset) else set(refs)
    parsed: list[spec.Contribution] = []
    for item in contributions:
        if not isinstance(item, dict) or set(item) - _CONTRIBUTION_FIELDS:
            raise OutputViolation("a contribution has unknown fields")
        ref = item.get("ref")
        if ref is not None and (not isinstance(ref, str) or ref not in known):
            raise OutputViolation("a contribution points at a record not in this run's input")
        parsed.append(
            spec.Contribution(
                amount=_number(item.get("amount"), "contribution amount"),
                reason=_short_text(item.get("reason"), "contribution reason"),
                ref=ref,
            )
        )
    reasons = data.get("reasons", [])
    if not isinstance(reasons, list) or len(reasons) > spec.MAX_REASONS:
        raise OutputViolation(f"at most {spec.MAX_REASONS} reasons")
    breakdown = data.get("breakdown", {})
    if not isinstance(breakdown, dict) or len(breakdown) > spec.MAX_BREAKDOWN:
        raise OutputViolation(f"breakdown must be an object of at most {spec.MAX_BREAKDOWN}")
    return spec.ScoreResult(
        value=value,
        contributions=tuple(parsed),
        reasons=tuple(_short_text(r, "reason") for r in reasons),
        breakdown={
            _short_text(k, "breakdown key"): _number(v, "breakdown value")
            for k, v in breakdown.items()
        },
    )
