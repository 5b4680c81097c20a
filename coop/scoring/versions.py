"""Consent for new scorer versions.

A member's consent names the version they enabled and what it read (kinds, and whether it
got text). When the installed version reads more, coop stops running it on that member's
data until they accept it: the last score stays, marked stale with the reason. A version
that reads the same or less is recorded with a note and runs at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from tortoise.transactions import in_transaction

from coop.connectors.spec import KINDS
from coop.errors import NotFoundError
from coop.scoring.models import ScorerConsent, ScorerConsentEvent
from coop.scoring.validate import ScorerMeta
from coop.types import utcnow

NEEDS_CONSENT = "needs_consent"


@dataclass(frozen=True)
class Accepted:
    version: str
    reads: tuple[str, ...]
    text: bool


@dataclass(frozen=True)
class Gap:
    """What an installed version reads beyond (or short of) what the member accepted."""

    accepted: Accepted
    version: str
    more: tuple[str, ...] = ()
    text: bool = False  # it now reads text where the accepted one read none
    less: tuple[str, ...] = ()
    no_text: bool = False

    @property
    def needs_consent(self) -> bool:
        return bool(self.more or self.text)

    @property
    def is_new(self) -> bool:
        return self.version != self.accepted.version

    def what_is_new(self) -> str:
        """In words, for the member: exactly what the new version reads in addition."""
        parts = [KINDS.get(k, k) for k in self.more]
        if self.text:
            parts.append("the text of your posts")
        return "; ".join(parts)

    def note(self) -> str:
        parts = [KINDS.get(k, k) for k in self.less]
        if self.no_text:
            parts.append("the text of your posts")
        return f"no longer reads {'; '.join(parts)}" if parts else "reads the same"


def accepted_of(consent: ScorerConsent, meta: ScorerMeta) -> Accepted | None:
    if not consent.accepted_version:
        return None
    reads = tuple(k for k in consent.accepted_reads.split(",") if k)
    return Accepted(consent.accepted_version, reads, consent.accepted_text)


async def _legacy(consent: ScorerConsent, meta: ScorerMeta) -> Accepted:
    """Consents given before coop recorded them: what the last "enabled" event showed."""
    event = (
        await ScorerConsentEvent.filter(
            member_id=consent.member_id, scorer=consent.scorer, action="enabled"
        )
        .order_by("-at")
        .first()
    )
    if event is None or not event.scorer_version:
        return Accepted(meta.version, meta.reads, meta.needs_text)
    same = event.scorer_version == meta.version
    reads = tuple(k for k in event.reads.split(",") if k)
    return Accepted(event.scorer_version, reads, meta.needs_text if same else False)


def gap(accepted: Accepted, meta: ScorerMeta) -> Gap:
    return Gap(
        accepted=accepted,
        version=meta.version,
        more=tuple(k for k in meta.reads if k not in accepted.reads),
        text=meta.needs_text and not accepted.text,
        less=tuple(k for k in accepted.reads if k not in meta.reads),
        no_text=accepted.text and not meta.needs_text,
    )


async def gap_for(consent: ScorerConsent, meta: ScorerMeta) -> Gap:
    return gap(accepted_of(consent, meta) or await _legacy(consent, meta), meta)


def stale_reason(found: Gap) -> str:
    return (
        f"Version {found.version} also reads {found.what_is_new()}. It does not run on your "
        f"data until you accept it; until then this score stays as version "
        f"{found.accepted.version} left it."
    )


async def record(*, consent: ScorerConsent, meta: ScorerMeta, action: str, note: str = "") -> None:
    """Accept `meta` on the consent row (its version and reads) and log `action`, if any."""
    now = utcnow()
    consent.accepted_version, consent.accepted_reads = meta.version, ",".join(meta.reads)
    consent.accepted_text, consent.stale_reason, consent.updated_at = meta.needs_text, "", now
    await consent.save(
        update_fields=[
            "accepted_version",
            "accepted_reads",
            "accepted_text",
            "stale_reason",
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
        reads=",".join(meta.reads),
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


async def accept_version(*, member_id: uuid.UUID, meta: ScorerMeta) -> bool:
    """The member accepts the installed version of an enabled scorer (what it reads now).
    NotFoundError if the scorer is not enabled; False if there was nothing to accept."""
    async with in_transaction():
        consent = await ScorerConsent.get_or_none(member_id=member_id, scorer=meta.name)
        if consent is None or not consent.enabled:
            raise NotFoundError("That scorer is not enabled.")
        found = await gap_for(consent, meta)
        if not found.is_new and not found.needs_consent and not consent.stale_reason:
            return False
        await record(consent=consent, meta=meta, action="accepted", note=found.what_is_new())
    return True


async def gate(*, member_id: uuid.UUID, meta: ScorerMeta) -> str:
    """ "" when `meta` may run on the member's data now; otherwise why not (`not_enabled`, or
    `needs_consent` for a version that reads more than the member accepted: its score goes
    stale). A version that reads the same or less is accepted here, with a note."""
    async with in_transaction():
        consent = await ScorerConsent.get_or_none(member_id=member_id, scorer=meta.name)
        if consent is None or not consent.enabled:
            return "not_enabled"
        found = await gap_for(consent, meta)
        if found.needs_consent:
            await hold(consent=consent, meta=meta, found=found)
            return NEEDS_CONSENT
        if found.is_new or not consent.accepted_version or consent.stale_reason:
            action = "updated" if found.is_new else ""
            await record(consent=consent, meta=meta, action=action, note=found.note())
    return ""


async def pending(*, member_id: uuid.UUID, metas: Iterable[ScorerMeta]) -> dict[str, Gap]:
    """Installed versions of the member's enabled scorers that wait for their consent."""
    rows = {c.scorer: c for c in await ScorerConsent.filter(member_id=member_id, enabled=True)}
    found = {}
    for meta in metas:
        consent = rows.get(meta.name)
        if consent is not None:
            gap = await gap_for(consent, meta)
            if gap.needs_consent:
                found[meta.name] = gap
    return found


async def stale_reasons(*, member_id: uuid.UUID) -> dict[str, str]:
    """Why a scorer's latest score is not kept current, by scorer (only the stale ones)."""
    rows = await ScorerConsent.filter(member_id=member_id).exclude(stale_reason="")
    return {r.scorer: r.stale_reason for r in rows}
