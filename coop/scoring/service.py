"""Scoring use cases: scorer consents, computing and storing scores, reading them back.

The scoring domain knows nothing of connectors: the flow in coop/jobs/scoring.py hands over
`MemberRecord`s. Here they become the scorer's `InputRecord`s (only declared kinds and fields, text
only when asked for, a stable per-scorer opaque `ref` instead of the record id), run through a
`Runner` (the sandbox), and the validated result is stored with its sealed explanation, its
sealed inputs and the sealed decomposition of the change since the previous score
(coop.scoring.causes).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from tortoise.transactions import in_transaction

from coop.errors import KeyMissingError, NotFoundError, ScorerError
from coop.scoring import (
    absence,
    causes,
    changes,
    declared,
    drift,
    health,
    inputs,
    previews,
    protocol,
    versions,
)
from coop.scoring.bands import band_of, bands_of
from coop.scoring.changes import Change
from coop.scoring.feeding import unfed_kinds
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
# or skip a score and "the latest" is always the same row (coop/consent/bearer.py picks it too).
NEWEST_FIRST = ("-computed_at", "-id")

TABLE = "score"
HISTORY_LIMIT = 1000  # rows one `list_history` call returns at most
STORED, UNCHANGED, FAILED, DROPPED = "stored", "unchanged", "failed", "dropped"
PREVIEWED = "previewed"  # a new version's result, waiting for the member (coop.scoring.previews)


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
class ScoreView:
    id: uuid.UUID
    scorer: str
    scorer_version: str
    value: float
    inputs_digest: str
    computed_at: datetime
    explanation: Explanation | None
    change: Change | None
    stale_reason: str = ""  # why this score is not kept current ("" when it is)

    @property
    def stale(self) -> bool:
        return bool(self.stale_reason)


@dataclass(frozen=True)
class ScoreOutcome:
    """What one computation did: stored | unchanged | previewed | failed (with `code`) |
    dropped (with `code`: not_enabled, needs_consent, kept, key_destroyed)."""

    scorer: str
    status: str
    score_id: uuid.UUID | None = None
    code: str = ""
    unfed: tuple[str, ...] = ()  # kinds it reads of which the member's records had none


@dataclass(frozen=True)
class ConsentEventView:
    scorer: str
    action: str
    scorer_version: str
    reads: tuple[str, ...]  # the kinds it read
    at: datetime
    note: str = ""
    read_words: tuple[str, ...] = ()  # what it read, for the member ("…: dates only")


# -- consent -------------------------------------------------------------------------------


async def _set_consent(
    *, member_id: uuid.UUID, meta: ScorerMeta | None, scorer: str, on: bool
) -> bool:
    now = utcnow()
    row = await ScorerConsent.get_or_none(member_id=member_id, scorer=scorer)
    if row is not None and row.enabled == on:
        return False
    if row is None:
        row = await ScorerConsent.create(
            id=uuid.uuid4(), member_id=member_id, scorer=scorer, enabled=on, updated_at=now
        )
    else:
        row.enabled, row.updated_at = on, now
        await row.save(update_fields=["enabled", "updated_at"])
    if on and meta is not None:
        await versions.record(consent=row, meta=meta, action="")  # the event follows
    await ScorerConsentEvent.create(
        id=uuid.uuid4(),
        member_id=member_id,
        scorer=scorer,
        action="enabled" if on else "disabled",
        scorer_version=meta.version if meta else "",
        reads=declared.encode(meta.read_fields()) if meta else "",
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
        await previews.discard(member_id=member_id, scorer=scorer)
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


async def mark_queued(*, member_id: uuid.UUID, scorers: Sequence[str] | None) -> list[str]:
    """Mark the member's enabled scorers (those among `scorers`, or all) as queued for a run
    (coop.scoring.absence.QUEUED) until the run records how it went; returns their names."""
    query = ScorerConsent.filter(member_id=member_id, enabled=True)
    if scorers is not None:
        query = query.filter(scorer__in=list(scorers))
    names = sorted(str(n) for n in await query.values_list("scorer", flat=True))
    if names:
        await ScorerConsent.filter(member_id=member_id, scorer__in=names).update(
            last_status=absence.QUEUED
        )
    return names


async def mark_interrupted(*, now: datetime) -> int:
    """Record every queued run as `interrupted` (its process is gone, see
    coop.jobs.recovery): the member sees that it did not finish and can recompute."""
    return int(
        await ScorerConsent.filter(last_status=absence.QUEUED).update(
            last_run_at=now, last_status=absence.INTERRUPTED
        )
    )


async def end_queued(*, member_id: uuid.UUID, scorers: Sequence[str] | None, status: str) -> int:
    """Record `status` as the run of those of the member's scorers (among `scorers`, or all)
    that are still queued: a job that stopped early leaves none of them waiting. Scorers
    whose run finished before it stopped keep their own status. Returns how many."""
    query = ScorerConsent.filter(member_id=member_id, last_status=absence.QUEUED)
    if scorers is not None:
        query = query.filter(scorer__in=list(scorers))
    return int(await query.update(last_run_at=utcnow(), last_status=status))


async def record_runs(*, member_id: uuid.UUID, scorers: Sequence[str], status: str) -> None:
    """Record how a run of these scorers ended when it ended before scoring (no sandbox)."""
    await ScorerConsent.filter(member_id=member_id, scorer__in=list(scorers)).update(
        last_run_at=utcnow(), last_status=status
    )


@dataclass(frozen=True)
class RunView:
    """The consent row's run facts for one scorer (coop.scoring.absence decides from them)."""

    enabled: bool
    ever_disabled: bool
    last_status: str
    last_run_at: datetime | None


async def get_run(*, member_id: uuid.UUID, scorer: str) -> RunView:
    row = await ScorerConsent.get_or_none(member_id=member_id, scorer=scorer)
    disabled = await ScorerConsentEvent.filter(
        member_id=member_id, scorer=scorer, action="disabled"
    ).exists()
    if row is None:
        return RunView(False, disabled, "", None)
    return RunView(row.enabled, disabled, row.last_status, row.last_run_at)


async def list_consent_events(
    *, member_id: uuid.UUID, scorer: str | None = None
) -> list[ConsentEventView]:
    query = ScorerConsentEvent.filter(member_id=member_id)
    if scorer is not None:
        query = query.filter(scorer=scorer)
    return [
        ConsentEventView(
            e.scorer,
            e.action,
            e.scorer_version,
            tuple(declared.decode(e.reads)),
            e.at,
            e.note,
            tuple(declared.describe(declared.decode(e.reads))),
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
            meta.visible(
                InputRecord(
                    ref=ref,
                    kind=record.kind,
                    occurred_at=record.occurred_at,
                    counts=record.counts,
                    text=record.text,
                    network=record.network,
                )
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
        # Rows as [name, value] pairs: sealed JSON sorts object keys, and the scorer's order
        # ("week 1" before "week 10") is part of what it says.
        "breakdown": [[k, v] for k, v in result.breakdown.items()],
        "input_refs": sorted(r.ref for r in inputs),
    }


async def _previous(member_id: uuid.UUID, scorer: str) -> Score | None:
    return await Score.filter(member_id=member_id, scorer=scorer).order_by(*NEWEST_FIRST).first()


async def latest_value(*, member_id: uuid.UUID, scorer: str) -> tuple[float, str] | None:
    """The member's current score of `scorer` as (value, scorer version), or None."""
    row = await _previous(member_id, scorer)
    return None if row is None else (row.value, row.scorer_version)


async def _record_run(member_id: uuid.UUID, scorer: str, status: str) -> None:
    await ScorerConsent.filter(member_id=member_id, scorer=scorer).update(
        last_run_at=utcnow(), last_status=status
    )


# A run whose inputs and scorer version are those of the current score stores nothing new
# unless its value moved by more than this share of the scorer's declared range, or into
# another band: a decaying score (reach) would otherwise store a row at every sync.
# docs/plugins/reference.md ("When a score is stored") gives the rule and why.
VALUE_TOLERANCE = 0.005


def value_tolerance(meta: ScorerMeta) -> float:
    """How far a score's value may drift, inputs and version unchanged, before it is stored."""
    low, high = meta.range
    return max(causes.EPSILON, VALUE_TOLERANCE * (float(high) - float(low)))


def _unchanged(previous: Score | None, digest: str, meta: ScorerMeta, value: float) -> bool:
    """Whether a run's result adds nothing to the member's history: same inputs, same
    version, the value within `value_tolerance` of the current score's and in its band."""
    if previous is None or previous.inputs_digest != digest:
        return False
    if previous.scorer_version != meta.version:
        return False
    if abs(previous.value - value) <= causes.EPSILON:
        return True
    edges = bands_of(meta.range, meta.bands)
    return abs(previous.value - value) <= value_tolerance(meta) and band_of(
        previous.value, edges
    ) == band_of(value, edges)


async def _change(
    *, runner: Runner, cipher: MemberCipher, previous: Score, after: causes.Side
) -> dict[str, Any]:
    packed = None
    if previous.inputs_sealed is not None:
        packed = cipher.open(
            previous.inputs_sealed, table=TABLE, column="inputs_sealed", row=previous.id
        )
    return await changes.compute(
        runner=runner,
        scorer=previous.scorer,
        before=changes.side(previous.value, previous.scorer_version, packed),
        previous_value=previous.value,
        previous_version=previous.scorer_version,
        after=after,
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
    """Score one member with one scorer and store the result (unless nothing changed), with
    its inputs and the decomposed change since the previous score (both sealed).

    Never raises for a plugin's failure: the outcome says `failed` with the error code, and
    the run is recorded on the consent row. Nothing is stored unless the member still has
    the scorer enabled and still exists when the result arrives."""
    now = now or utcnow()
    meta = runner.meta(scorer)
    blocked = await versions.gate(member_id=member_id, meta=meta)
    preview = blocked == versions.PREVIEW
    if blocked and not preview:  # not enabled, or a version the member did not accept
        if blocked != "not_enabled":
            await _record_run(member_id, scorer, blocked)
        return ScoreOutcome(scorer, DROPPED, code=blocked)
    records = list(records)
    listed, ids = input_records(vault=vault, meta=meta, records=records)
    unfed = tuple(unfed_kinds(meta.reads, (r.kind for r in records)))
    if unfed:
        health.unfed_log.warn(scorer, unfed)
    encoded = protocol.EncodedRecords(listed)  # encoded once: for the digest and the job
    digest = protocol.inputs_digest(scorer=scorer, records=encoded)
    fed = {r.kind for r in listed}
    try:
        result = await runner.run(scorer=scorer, records=encoded, now=now)
    except ScorerError as exc:
        await health.record_run(scorer=scorer, version=meta.version, kinds_given=fed, error=exc)
        await _record_run(member_id, scorer, exc.code)
        return ScoreOutcome(scorer, FAILED, code=exc.code, unfed=unfed)
    await health.record_run(scorer=scorer, version=meta.version, kinds_given=fed)
    outcome = await _keep(
        vault=vault,
        runner=runner,
        member_id=member_id,
        meta=meta,
        result=result,
        ids=ids,
        encoded=encoded,
        digest=digest,
        now=now,
        preview=preview,
    )
    return replace(outcome, unfed=unfed) if unfed else outcome


async def _keep(
    *,
    vault: Vault,
    runner: Runner,
    member_id: uuid.UUID,
    meta: ScorerMeta,
    result: ScoreResult,
    ids: dict[str, str],
    encoded: protocol.EncodedRecords,
    digest: str,
    now: datetime,
    preview: bool,
) -> ScoreOutcome:
    """Store a run's result (or its preview), unless nothing changed."""
    scorer = meta.name
    explanation = _explanation_json(result, ids, encoded)
    used = inputs.ScoreInputs(
        now=now,
        reads=meta.reads,
        needs_text=meta.needs_text,
        records=inputs.sorted_records(encoded),
        record_ids=ids,
        distribution=runner.distribution(scorer),
    )
    after = causes.Side(value=result.value, version=meta.version, inputs=used)
    try:
        cipher = await vault.cipher_for(member_id)
    except KeyMissingError:
        return ScoreOutcome(scorer, DROPPED, code="key_destroyed")
    if preview:
        return await _preview(
            cipher=cipher, runner=runner, member_id=member_id, scorer=scorer, after=after
        )
    for _ in range(3):  # the change is measured against the latest score: retry on a race
        previous = await _previous(member_id, scorer)
        if _unchanged(previous, digest, meta, result.value):
            break
        change = None
        if previous is not None:  # re-runs the scorer: outside any transaction
            change = await _change(runner=runner, cipher=cipher, previous=previous, after=after)
        stored = await _store(
            cipher=cipher,
            member_id=member_id,
            scorer=scorer,
            version=meta.version,
            value=result.value,
            digest=digest,
            now=now,
            explanation=explanation,
            change=change,
            used=used,
            previous=previous,
        )
        if stored is not None:
            return stored
    else:
        return ScoreOutcome(scorer, FAILED, code="conflict")
    async with in_transaction():
        if not await _enabled(member_id, scorer):
            return ScoreOutcome(scorer, DROPPED, code="not_enabled")
        await _record_run(member_id, scorer, UNCHANGED)
    latest = await _previous(member_id, scorer)
    return ScoreOutcome(scorer, UNCHANGED, latest.id if latest else None)


async def _preview(
    *,
    cipher: MemberCipher,
    runner: Runner,
    member_id: uuid.UUID,
    scorer: str,
    after: causes.Side,
) -> ScoreOutcome:
    """A new version's result, with its causes against the current score, kept apart from
    the member's scores (apps never see it) until they accept it."""
    previous = await _previous(member_id, scorer)
    change = None
    if previous is not None:
        change = await _change(runner=runner, cipher=cipher, previous=previous, after=after)
    preview_id = await previews.store(
        cipher=cipher,
        member_id=member_id,
        scorer=scorer,
        version=after.version,
        value=after.value,
        now=after.inputs.now,
        change=change,
    )
    await _record_run(member_id, scorer, PREVIEWED)
    return ScoreOutcome(scorer, PREVIEWED, preview_id)


async def _enabled(member_id: uuid.UUID, scorer: str) -> bool:
    consent = await ScorerConsent.get_or_none(member_id=member_id, scorer=scorer)
    return consent is not None and consent.enabled


async def _store(
    *,
    cipher: MemberCipher,
    member_id: uuid.UUID,
    scorer: str,
    version: str,
    value: float,
    digest: str,
    now: datetime,
    explanation: dict[str, Any],
    change: dict[str, Any] | None,
    used: inputs.ScoreInputs,
    previous: Score | None,
) -> ScoreOutcome | None:
    """Store the score unless another one landed since `previous` was read (None: retry)."""
    async with in_transaction():
        if not await _enabled(member_id, scorer):
            return ScoreOutcome(scorer, DROPPED, code="not_enabled")
        latest = await _previous(member_id, scorer)
        if (latest.id if latest else None) != (previous.id if previous else None):
            return None
        score_id = uuid.uuid4()
        computed_at = now
        if previous is not None and computed_at <= previous.computed_at:
            # A score's history is a chain (its change is measured against `previous`), and
            # computed_at orders it: a run recorded in the same instant as the previous one,
            # or given an older clock, is stored just after it.
            computed_at = previous.computed_at + timedelta(microseconds=1)
        await Score.create(
            id=score_id,
            member_id=member_id,
            scorer=scorer,
            scorer_version=version,
            value=value,
            inputs_digest=digest,
            computed_at=computed_at,
            explanation_sealed=cipher.seal_json(
                explanation, table=TABLE, column="explanation_sealed", row=score_id
            ),
            change_sealed=None
            if change is None
            else cipher.seal_json(change, table=TABLE, column="change_sealed", row=score_id),
            inputs_sealed=cipher.seal(
                inputs.pack(used), table=TABLE, column="inputs_sealed", row=score_id
            ),
        )
        if change is not None and change.get("unversioned"):
            await drift.record(scorer=scorer, version=version)
        await _record_run(member_id, scorer, STORED)
    return ScoreOutcome(scorer, STORED, score_id)


# -- reading -----------------------------------------------------------------------------


def breakdown_rows(stored: object) -> list[tuple[str, float]]:
    """A stored explanation's breakdown as (name, value) rows in the scorer's order: pairs
    since coop kept the order; an object (older scores) in the order it was stored."""
    if isinstance(stored, Mapping):
        return [(str(k), float(v)) for k, v in stored.items()]
    if isinstance(stored, list):
        return [(str(k), float(v)) for k, v in stored]
    return []


def explanation_of(data: Mapping[str, Any]) -> Explanation:
    """A score's explanation from its opened `explanation_sealed` JSON."""
    return Explanation(
        contributions=tuple(
            sorted(
                (
                    ContributionView(
                        float(c["amount"]), str(c["reason"]), c.get("ref"), c.get("record_id")
                    )
                    for c in data.get("contributions", [])
                ),
                key=lambda c: -abs(c.amount),  # largest movers first, whatever the scorer's order
            )
        ),
        reasons=tuple(data.get("reasons", [])),
        breakdown=dict(breakdown_rows(data.get("breakdown"))),
        record_count=len(data.get("input_refs", [])),
    )


def _view(row: Score, cipher: MemberCipher, *, explain: bool, stale_reason: str = "") -> ScoreView:
    explanation = None
    if explain:
        explanation = explanation_of(
            cipher.open_json(
                row.explanation_sealed, table=TABLE, column="explanation_sealed", row=row.id
            )
        )
    change = None
    if row.change_sealed is not None:
        change = changes.from_json(
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
        stale_reason=stale_reason,
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
    stale = await versions.stale_reasons(member_id=member_id)
    views = []
    for name in sorted(set(names)):
        row = await _previous(member_id, name)
        if row is not None:
            views.append(_view(row, cipher, explain=True, stale_reason=stale.get(name, "")))
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
    latest = await _previous(member_id, row.scorer)
    stale = ""
    if latest is not None and latest.id == row.id:
        stale = (await versions.stale_reasons(member_id=member_id)).get(row.scorer, "")
    return _view(row, await vault.cipher_for(member_id), explain=True, stale_reason=stale)


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
        score_id: explanation_of(
            cipher.open_json(blob, table=TABLE, column="explanation_sealed", row=score_id)
        )
        for score_id, blob in sealed.items()
    }
