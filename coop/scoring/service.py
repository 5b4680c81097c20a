"""Scoring use cases: scorer consents, computing and storing scores, reading them back.

The scoring domain knows nothing of connectors: the flow in coop/jobs/scoring.py hands over
`MemberRecord`s. Here they become the scorer's `InputRecord`s (only declared kinds, text only
when asked for, a stable per-scorer opaque `ref` instead of the record id), run through a
`Runner` (the sandbox), and the validated result is stored with a sealed explanation and a
sealed attribution of the change since the previous score.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tortoise.transactions import in_transaction

from coop.errors import KeyMissingError, NotFoundError, ScorerError
from coop.scoring import attribution, protocol
from coop.scoring.models import Score, ScorerConsent, ScorerConsentEvent
from coop.scoring.runner import Runner
from coop.scoring.spec import InputRecord, ScoreResult
from coop.scoring.validate import ScorerMeta
from coop.types import utcnow
from coop.vault import MemberCipher, Vault

log = logging.getLogger("coop.scoring")
# A total order for a scorer's scores, newest first. compute_score keeps computed_at strictly
# increasing along each member's history of a scorer; ties can still come from elsewhere (a
# restored or hand-edited database), and are broken by id so that history pages never repeat
# or skip a score and "the latest" is always the same row (coop/jobs/reads.py picks it too).
NEWEST_FIRST = ("-computed_at", "-id")

TABLE = "score"
HISTORY_LIMIT = 1000  # rows one `list_history` call returns at most
STORED, UNCHANGED, FAILED, DROPPED = "stored", "unchanged", "failed", "dropped"


@dataclass(frozen=True)
class MemberRecord:
    """One of the member's records as the scoring flow hands it over."""

    record_id: uuid.UUID
    kind: str
    occurred_at: datetime
    counts: Mapping[str, int] = field(default_factory=dict)
    text: str | None = None
    network: str | None = None


@dataclass(frozen=True)
class ContributionView:
    amount: float
    reason: str
    ref: str | None
    record_id: str | None


@dataclass(frozen=True)
class Explanation:
    contributions: tuple[ContributionView, ...]
    reasons: tuple[str, ...]
    breakdown: Mapping[str, float]
    record_count: int


@dataclass(frozen=True)
class Change:
    """Why the score moved since the previous one (see coop.scoring.attribution)."""

    labels: tuple[str, ...]
    previous_value: float
    delta: float
    previous_version: str
    version: str
    new_records: int
    gone_records: int
    moved: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class ScoreView:
    id: uuid.UUID
    scorer: str
    scorer_version: str
    value: float
    inputs_digest: str
    computed_at: datetime
    explanation: Explanation | None
    change: Change | None


@dataclass(frozen=True)
class ScoreOutcome:
    """What one computation did: stored | unchanged | failed (with `code`) | dropped."""

    scorer: str
    status: str
    score_id: uuid.UUID | None = None
    code: str = ""


@dataclass(frozen=True)
class ConsentEventView:
    scorer: str
    action: str
    scorer_version: str
    reads: tuple[str, ...]
    at: datetime


# -- consent -------------------------------------------------------------------------------


async def _set_consent(
    *, member_id: uuid.UUID, meta: ScorerMeta | None, scorer: str, on: bool
) -> bool:
    now = utcnow()
    row = await ScorerConsent.get_or_none(member_id=member_id, scorer=scorer)
    if row is not None and row.enabled == on:
        return False
    if row is None:
        await ScorerConsent.create(
            id=uuid.uuid4(), member_id=member_id, scorer=scorer, enabled=on, updated_at=now
        )
    else:
        row.enabled, row.updated_at = on, now
        await row.save(update_fields=["enabled", "updated_at"])
    await ScorerConsentEvent.create(
        id=uuid.uuid4(),
        member_id=member_id,
        scorer=scorer,
        action="enabled" if on else "disabled",
        scorer_version=meta.version if meta else "",
        reads=",".join(meta.reads) if meta else "",
        at=now,
    )
    return True


async def enable_scorer(*, member_id: uuid.UUID, meta: ScorerMeta) -> bool:
    """Let `meta.name` run on the member's data (records the version and kinds shown)."""
    async with in_transaction():
        return await _set_consent(member_id=member_id, meta=meta, scorer=meta.name, on=True)


async def disable_scorer(*, member_id: uuid.UUID, scorer: str) -> int:
    """Stop a scorer and delete every score it computed for the member; returns how many."""
    async with in_transaction():
        await _set_consent(member_id=member_id, meta=None, scorer=scorer, on=False)
        deleted: int = await Score.filter(member_id=member_id, scorer=scorer).delete()
    return deleted


async def list_consents(*, member_id: uuid.UUID) -> dict[str, bool]:
    rows = await ScorerConsent.filter(member_id=member_id).values_list("scorer", "enabled")
    return {str(name): bool(on) for name, on in rows}


async def list_enabled_scorers(*, member_id: uuid.UUID) -> list[str]:
    rows = await ScorerConsent.filter(member_id=member_id, enabled=True).values_list(
        "scorer", flat=True
    )
    return sorted(str(r) for r in rows)


async def list_last_runs(*, member_id: uuid.UUID) -> dict[str, tuple[datetime | None, str]]:
    rows = await ScorerConsent.filter(member_id=member_id).values_list(
        "scorer", "last_run_at", "last_status"
    )
    return {str(s): (at, str(status)) for s, at, status in rows}


async def list_consent_events(
    *, member_id: uuid.UUID, scorer: str | None = None
) -> list[ConsentEventView]:
    query = ScorerConsentEvent.filter(member_id=member_id)
    if scorer is not None:
        query = query.filter(scorer=scorer)
    return [
        ConsentEventView(
            e.scorer, e.action, e.scorer_version, tuple(filter(None, e.reads.split(","))), e.at
        )
        for e in await query.order_by("at")
    ]


# -- computing -------------------------------------------------------------------------------


def input_records(
    *, vault: Vault, meta: ScorerMeta, records: Iterable[MemberRecord]
) -> tuple[list[InputRecord], dict[str, str]]:
    """The scorer's view of the records, and ref -> record id. Refs are keyed per scorer, so
    two scorers cannot correlate records, and stable, so history can compare runs."""
    inputs: list[InputRecord] = []
    ids: dict[str, str] = {}
    for record in records:
        if record.kind not in meta.reads:
            continue
        ref = vault.blind_index(str(record.record_id), purpose=f"scorer-ref:{meta.name}")[:24]
        ids[ref] = str(record.record_id)
        inputs.append(
            InputRecord(
                ref=ref,
                kind=record.kind,
                occurred_at=record.occurred_at,
                counts=dict(record.counts),
                text=record.text if meta.needs_text else None,
                network=record.network,
            )
        )
    return inputs, ids


def _explanation_json(
    result: ScoreResult, ids: Mapping[str, str], inputs: Sequence[InputRecord]
) -> dict[str, Any]:
    return {
        "contributions": [
            {
                "amount": c.amount,
                "reason": c.reason,
                "ref": c.ref,
                "record_id": ids.get(c.ref) if c.ref else None,
            }
            for c in result.contributions
        ],
        "reasons": list(result.reasons),
        "breakdown": dict(result.breakdown),
        "input_refs": sorted(r.ref for r in inputs),
    }


async def _previous(member_id: uuid.UUID, scorer: str) -> Score | None:
    return await Score.filter(member_id=member_id, scorer=scorer).order_by(*NEWEST_FIRST).first()


async def _record_run(member_id: uuid.UUID, scorer: str, status: str) -> None:
    await ScorerConsent.filter(member_id=member_id, scorer=scorer).update(
        last_run_at=utcnow(), last_status=status
    )


async def compute_score(
    *,
    vault: Vault,
    runner: Runner,
    member_id: uuid.UUID,
    scorer: str,
    records: Iterable[MemberRecord],
    now: datetime | None = None,
) -> ScoreOutcome:
    """Score one member with one scorer and store the result (unless nothing changed).

    Never raises for a plugin's failure: the outcome says `failed` with the error code, and
    the run is recorded on the consent row. Nothing is stored unless the member still has
    the scorer enabled and still exists when the result arrives."""
    now = now or utcnow()
    meta = runner.meta(scorer)
    listed, ids = input_records(vault=vault, meta=meta, records=records)
    inputs = protocol.EncodedRecords(listed)  # encoded once: for the digest and the job
    digest = protocol.inputs_digest(scorer=scorer, records=inputs)
    try:
        result = await runner.run(scorer=scorer, records=inputs, now=now)
    except ScorerError as exc:
        await _record_run(member_id, scorer, exc.code)
        return ScoreOutcome(scorer, FAILED, code=exc.code)
    explanation = _explanation_json(result, ids, inputs)
    try:
        cipher = await vault.cipher_for(member_id)
    except KeyMissingError:
        return ScoreOutcome(scorer, DROPPED, code="key_destroyed")
    async with in_transaction():
        consent = await ScorerConsent.get_or_none(member_id=member_id, scorer=scorer)
        if consent is None or not consent.enabled:
            return ScoreOutcome(scorer, DROPPED, code="not_enabled")
        previous = await _previous(member_id, scorer)
        if (
            previous is not None
            and previous.inputs_digest == digest
            and previous.scorer_version == meta.version
            and abs(previous.value - result.value) <= attribution.EPSILON
        ):
            await _record_run(member_id, scorer, UNCHANGED)
            return ScoreOutcome(scorer, UNCHANGED, previous.id)
        score_id = uuid.uuid4()
        change = None
        computed_at = now
        if previous is not None and computed_at <= previous.computed_at:
            # A score's history is a chain (its change is measured against `previous`), and
            # computed_at orders it: a run recorded in the same instant as the previous one,
            # or given an older clock, is stored just after it.
            computed_at = previous.computed_at + timedelta(microseconds=1)
        if previous is not None:
            before = cipher.open_json(
                previous.explanation_sealed,
                table=TABLE,
                column="explanation_sealed",
                row=previous.id,
            )
            change = attribution.attribute(
                attribution.snapshot(previous.value, previous.scorer_version, before),
                attribution.snapshot(result.value, meta.version, explanation),
            )
        await Score.create(
            id=score_id,
            member_id=member_id,
            scorer=scorer,
            scorer_version=meta.version,
            value=result.value,
            inputs_digest=digest,
            computed_at=computed_at,
            explanation_sealed=cipher.seal_json(
                explanation, table=TABLE, column="explanation_sealed", row=score_id
            ),
            change_sealed=None
            if change is None
            else cipher.seal_json(change, table=TABLE, column="change_sealed", row=score_id),
        )
        await _record_run(member_id, scorer, STORED)
    return ScoreOutcome(scorer, STORED, score_id)


# -- reading -----------------------------------------------------------------------------


def _explanation(data: Mapping[str, Any]) -> Explanation:
    return Explanation(
        contributions=tuple(
            ContributionView(float(c["amount"]), str(c["reason"]), c.get("ref"), c.get("record_id"))
            for c in data.get("contributions", [])
        ),
        reasons=tuple(data.get("reasons", [])),
        breakdown=dict(data.get("breakdown", {})),
        record_count=len(data.get("input_refs", [])),
    )


def _change(data: Mapping[str, Any]) -> Change:
    return Change(
        labels=tuple(data["labels"]),
        previous_value=float(data["previous_value"]),
        delta=float(data["delta"]),
        previous_version=str(data["previous_version"]),
        version=str(data["version"]),
        new_records=int(data["new_records"]),
        gone_records=int(data["gone_records"]),
        moved=tuple(data["moved"]),
    )


def _view(row: Score, cipher: MemberCipher, *, explain: bool) -> ScoreView:
    explanation = None
    if explain:
        explanation = _explanation(
            cipher.open_json(
                row.explanation_sealed, table=TABLE, column="explanation_sealed", row=row.id
            )
        )
    change = None
    if row.change_sealed is not None:
        change = _change(
            cipher.open_json(row.change_sealed, table=TABLE, column="change_sealed", row=row.id)
        )
    return ScoreView(
        id=row.id,
        scorer=row.scorer,
        scorer_version=row.scorer_version,
        value=row.value,
        inputs_digest=row.inputs_digest,
        computed_at=row.computed_at,
        explanation=explanation,
        change=change,
    )


async def list_current_scores(
    *, vault: Vault, member_id: uuid.UUID, scorers: Iterable[str] | None = None
) -> list[ScoreView]:
    """The latest score of each scorer the member has enabled (or of `scorers`), by name."""
    names = (
        list(scorers) if scorers is not None else await list_enabled_scorers(member_id=member_id)
    )
    if not names:
        return []
    cipher = await vault.cipher_for(member_id)
    views = []
    for name in sorted(set(names)):
        row = await _previous(member_id, name)
        if row is not None:
            views.append(_view(row, cipher, explain=True))
    return views


async def list_history(
    *,
    vault: Vault,
    member_id: uuid.UUID,
    scorer: str,
    limit: int = 100,
    offset: int = 0,
    explain: bool = False,
) -> list[ScoreView]:
    """A scorer's past scores for the member, newest first (explanations on request): at most
    `limit` (capped at `HISTORY_LIMIT`) of them, after skipping the `offset` newest."""
    rows = (
        await Score.filter(member_id=member_id, scorer=scorer)
        .order_by(*NEWEST_FIRST)
        .offset(max(0, offset))
        .limit(max(1, min(limit, HISTORY_LIMIT)))
    )
    if not rows:
        return []
    cipher = await vault.cipher_for(member_id)
    return [_view(row, cipher, explain=explain) for row in rows]


async def get_score(*, vault: Vault, member_id: uuid.UUID, score_id: uuid.UUID) -> ScoreView:
    """One score with its explanation; NotFoundError if it is not the member's."""
    row = await Score.get_or_none(id=score_id, member_id=member_id)
    if row is None:
        raise NotFoundError()
    return _view(row, await vault.cipher_for(member_id), explain=True)


async def open_explanations(
    *, vault: Vault, member_id: uuid.UUID, sealed: Mapping[uuid.UUID, bytes]
) -> dict[uuid.UUID, Explanation]:
    """Open several of the member's sealed score explanations (`explanation_sealed` by score
    id, as read from the member's own rows) with one unwrap of the member's key.
    KeyMissingError once the key is shredded, IntegrityError if a blob is not that row's."""
    if not sealed:
        return {}
    cipher = await vault.cipher_for(member_id)
    return {
        score_id: _explanation(
            cipher.open_json(blob, table=TABLE, column="explanation_sealed", row=score_id)
        )
        for score_id, blob in sealed.items()
    }
