"""Consent for new scorer versions, and their previews.

A member's consent names the version they accepted and what it read (kinds with their fields,
coop.scoring.declared, and whether it got text). When the installed version reads more (another
kind, or more fields of a kind), coop stops running it on that member's data until they accept
it: the last score stays, marked stale with the reason. A new version that reads the same or
less runs, but into a preview (coop.scoring.previews) that the member accepts ("Accept new
version"), declines ("Keep current score": the last score stays, frozen and stale) or answers
by disabling the scorer. Reading less (a kind, or fields of a kind) is noted, never asked.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from tortoise.transactions import in_transaction

from coop import db
from coop.errors import ConflictError, NotFoundError
from coop.scoring import declared
from coop.scoring.models import Score, ScorePreview, ScorerConsent, ScorerConsentEvent
from coop.scoring.previews import PreviewView
from coop.scoring.validate import ScorerMeta
from coop.types import utcnow

NEEDS_CONSENT = "needs_consent"
PREVIEW = "preview"
KEPT = "kept"


@dataclass(frozen=True)
class Accepted:
    version: str
    reads: declared.Reads  # kind -> fields
    text: bool


@dataclass(frozen=True)
class Gap:
    """What an installed version reads beyond (or short of) what the member accepted."""

    accepted: Accepted
    version: str
    more: declared.Reads = field(default_factory=dict)  # new kinds, or new fields of a kind
    text: bool = False  # it now reads text where the accepted one read none
    less: declared.Reads = field(default_factory=dict)  # kinds, or fields, no longer read
    no_text: bool = False
    installed: declared.Reads = field(default_factory=dict)  # what the installed one reads

    @property
    def needs_consent(self) -> bool:
        return bool(self.more or self.text)

    @property
    def is_new(self) -> bool:
        return self.version != self.accepted.version

    def what_is_new(self) -> str:
        """In words, for the member: exactly what the new version reads in addition."""
        parts = declared.change_words(self.more, self.accepted.reads)
        if self.text:
            parts.append("the text of your posts")
        return "; ".join(parts)

    def note(self) -> str:
        parts = declared.change_words(self.less, self.installed)
        if self.no_text:
            parts.append("the text of your posts")
        return f"no longer reads {'; '.join(parts)}" if parts else "reads the same"


def accepted_of(consent: ScorerConsent, meta: ScorerMeta) -> Accepted | None:
    return _accepted(consent.accepted_version, consent.accepted_reads, consent.accepted_text)


def _accepted(version: str, reads: str, text: bool) -> Accepted | None:
    """What a consent row's accepted_* columns say was accepted (None: not recorded)."""
    return Accepted(version, declared.decode(reads), text) if version else None


async def _legacy(member_id: uuid.UUID, scorer: str, meta: ScorerMeta) -> Accepted:
    """Consents given before coop recorded them: what the last "enabled" event showed."""
    event = (
        await ScorerConsentEvent.filter(member_id=member_id, scorer=scorer, action="enabled")
        .order_by("-at")
        .first()
    )
    if event is None or not event.scorer_version:
        return Accepted(meta.version, meta.read_fields(), meta.needs_text)
    same = event.scorer_version == meta.version
    reads = declared.decode(event.reads)
    return Accepted(event.scorer_version, reads, meta.needs_text if same else False)


def gap(accepted: Accepted, meta: ScorerMeta) -> Gap:
    """Reading more fields of a kind is reading more, like reading another kind."""
    now = meta.read_fields()
    return Gap(
        accepted=accepted,
        version=meta.version,
        more=declared.wider(now, accepted.reads),
        text=meta.needs_text and not accepted.text,
        less=declared.wider(accepted.reads, now),
        no_text=accepted.text and not meta.needs_text,
        installed=now,
    )


async def gap_for(consent: ScorerConsent, meta: ScorerMeta) -> Gap:
    accepted = accepted_of(consent, meta)
    if accepted is None:
        accepted = await _legacy(consent.member_id, consent.scorer, meta)
    return gap(accepted, meta)


def stale_reason(found: Gap) -> str:
    return (
        f"Version {found.version} also reads {found.what_is_new()}. It does not run on your "
        f"data until you accept it; until then this score stays as version "
        f"{found.accepted.version} left it."
    )


async def record(*, consent: ScorerConsent, meta: ScorerMeta, action: str, note: str = "") -> None:
    """Accept `meta` on the consent row (its version and reads) and log `action`, if any."""
    now = utcnow()
    consent.accepted_version = meta.version
    consent.accepted_reads = declared.encode(meta.read_fields())
    consent.accepted_text, consent.stale_reason, consent.updated_at = meta.needs_text, "", now
    consent.kept_version = ""
    await consent.save(
        update_fields=[
            "accepted_version",
            "accepted_reads",
            "accepted_text",
            "stale_reason",
            "kept_version",
            "updated_at",
        ]
    )
    if action:
        await _event(consent.member_id, consent.scorer, action, meta, note)


async def _event(
    member_id: uuid.UUID, scorer: str, action: str, meta: ScorerMeta, note: str = ""
) -> None:
    await ScorerConsentEvent.create(
        id=uuid.uuid4(),
        member_id=member_id,
        scorer=scorer,
        action=action,
        scorer_version=meta.version,
        reads=declared.encode(meta.read_fields()),
        note=note[:300],
        at=utcnow(),
    )


async def hold(*, consent: ScorerConsent, meta: ScorerMeta, found: Gap) -> None:
    """Stop running a version that reads more: the score goes stale, once, with the reason."""
    reason = stale_reason(found)
    if consent.stale_reason == reason:
        return
    consent.stale_reason = reason
    await consent.save(update_fields=["stale_reason"])
    await _event(consent.member_id, consent.scorer, "asked", meta, found.what_is_new())


async def _enabled_consent(member_id: uuid.UUID, scorer: str) -> ScorerConsent:
    consent = await ScorerConsent.get_or_none(member_id=member_id, scorer=scorer)
    if consent is None or not consent.enabled:
        raise NotFoundError("That scorer is not enabled.")
    return consent


async def accept_version(*, member_id: uuid.UUID, meta: ScorerMeta) -> bool:
    """The member accepts the installed version of an enabled scorer (what it reads now; its
    preview, if any, is dropped: the next run stores its score). NotFoundError if the scorer
    is not enabled; False if there was nothing to accept."""
    async with in_transaction():
        consent = await _enabled_consent(member_id, meta.name)
        found = await gap_for(consent, meta)
        await ScorePreview.filter(member_id=member_id, scorer=meta.name).delete()
        if not found.is_new and not found.needs_consent and not consent.stale_reason:
            return False
        note = found.what_is_new() or found.note()
        await record(consent=consent, meta=meta, action="accepted", note=note)
    return True


async def keep_current(*, member_id: uuid.UUID, meta: ScorerMeta) -> None:
    """ "Keep current score": the installed version does not run on the member's data; their
    last score from the accepted version stays, frozen and marked stale for apps."""
    async with in_transaction():
        consent = await _enabled_consent(member_id, meta.name)
        found = await gap_for(consent, meta)
        if not found.is_new:
            raise ConflictError("There is no new version to decline.")
        await ScorePreview.filter(member_id=member_id, scorer=meta.name).delete()
        consent.kept_version = meta.version
        consent.stale_reason = (
            f"You kept the last score of version {found.accepted.version}. Version "
            f"{meta.version} is installed and does not run on your data unless you accept it."
        )
        await consent.save(update_fields=["kept_version", "stale_reason"])
        await _event(member_id, meta.name, "kept", meta, f"kept version {found.accepted.version}")


async def label(*, member_id: uuid.UUID, scorer: str, reason: str) -> None:
    """Mark the member's last score of `scorer` stale with `reason` (the cooperative has not
    approved the installed version: it does not run). The next run it may make clears it."""
    await (
        ScorerConsent.filter(member_id=member_id, scorer=scorer)
        .exclude(stale_reason=reason)
        .update(stale_reason=reason)
    )


async def label_all(*, scorer: str, reason: str) -> int:
    """`label` for every member who has `scorer` enabled (a vote's outcome)."""
    updated: int = await ScorerConsent.filter(scorer=scorer, enabled=True).update(
        stale_reason=reason
    )
    return updated


async def _mark(consent: ScorerConsent, reason: str) -> None:
    if consent.stale_reason != reason:
        consent.stale_reason = reason
        await consent.save(update_fields=["stale_reason"])


async def gate(*, member_id: uuid.UUID, meta: ScorerMeta) -> str:
    """What coop may do with `meta` on the member's data now:
    - "" run it and store the score;
    - `preview`: a new version: run it, but store a preview the member accepts or declines
      (the current score stays and is marked stale meanwhile);
    - `kept`: the member kept the previous version's score: do not run it;
    - `needs_consent`: a new version that reads more: do not run it until accepted;
    - `not_enabled`."""
    async with in_transaction():
        consent = await ScorerConsent.get_or_none(member_id=member_id, scorer=meta.name)
        if consent is None or not consent.enabled:
            return "not_enabled"
        found = await gap_for(consent, meta)
        if found.needs_consent:
            await hold(consent=consent, meta=meta, found=found)
            return NEEDS_CONSENT
        if not found.is_new:
            if not consent.accepted_version or consent.stale_reason or consent.kept_version:
                await record(consent=consent, meta=meta, action="")
            return ""
        if consent.kept_version == meta.version:
            return KEPT
        if not await Score.exists(member_id=member_id, scorer=meta.name):
            await record(consent=consent, meta=meta, action="updated", note=found.note())
            return ""  # nothing to compare with: the new version simply scores
        await _mark(
            consent,
            f"Version {meta.version} is installed and waits for your review; this is the last "
            f"score of version {found.accepted.version}.",
        )
    return PREVIEW


@dataclass(frozen=True)
class Pending:
    """A new version of one of the member's scorers that waits for them."""

    gap: Gap
    kept: bool  # the member answered "Keep current score"
    preview: PreviewView | None = None  # filled in by the flow (it holds the vault)


async def pending(*, member_id: uuid.UUID, metas: Iterable[ScorerMeta]) -> dict[str, Pending]:
    """Installed versions of the member's enabled scorers that they have not accepted."""
    rows = {c.scorer: c for c in await ScorerConsent.filter(member_id=member_id, enabled=True)}
    found = {}
    for meta in metas:
        consent = rows.get(meta.name)
        if consent is not None:
            gap = await gap_for(consent, meta)
            if gap.is_new or gap.needs_consent:
                found[meta.name] = Pending(gap, consent.kept_version == meta.version)
    return found


# The member's consent rows as `member_settings` reads them (one raw statement).
_CONSENTS = """
SELECT scorer, enabled, accepted_version, accepted_reads, accepted_text, kept_version
FROM scorer_consent WHERE member_id = {1}"""


@dataclass(frozen=True)
class MemberSettings:
    """Which scorers a member enabled and which of those have a version waiting for them."""

    enabled: frozenset[str]
    pending: Mapping[str, Pending]  # as `pending` finds them (without previews)


async def member_settings(*, member_id: uuid.UUID, metas: Iterable[ScorerMeta]) -> MemberSettings:
    """`list_enabled_scorers` and `pending` in one raw statement (the API's
    `viewer.scorerSettings`; tests/scoring/test_versions.py holds them equal). Committed
    data only: not for use inside a transaction that changed consents."""
    read = await db.read(_CONSENTS, member_id)
    rows = [row for row in read if row["enabled"]]
    by_name = {str(r["scorer"]): r for r in rows}
    pending: dict[str, Pending] = {}
    for meta in metas:
        row = by_name.get(meta.name)
        if row is None:
            continue
        accepted = _accepted(
            str(row["accepted_version"]), str(row["accepted_reads"]), bool(row["accepted_text"])
        )
        if accepted is None:
            accepted = await _legacy(member_id, meta.name, meta)
        found = gap(accepted, meta)
        if found.is_new or found.needs_consent:
            pending[meta.name] = Pending(found, str(row["kept_version"]) == meta.version)
    return MemberSettings(enabled=frozenset(by_name), pending=pending)


async def stale_reasons(*, member_id: uuid.UUID) -> dict[str, str]:
    """Why a scorer's latest score is not kept current, by scorer (only the stale ones)."""
    rows = await ScorerConsent.filter(member_id=member_id).exclude(stale_reason="")
    return {r.scorer: r.stale_reason for r in rows}
