"""Grants as first-class records: every change appends a GrantEvent, nothing is overwritten
silently. The current `status` is what token checks read, on every request."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.transactions import in_transaction

from coop.errors import ConflictError, InvalidInputError, InvalidScopeError, NotFoundError
from coop.types import utcnow

from .disclosure import is_lower_or_same, narrowed
from .models import Grant, GrantEvent, OAuthToken, SharingPause

ACTIVE, PAUSED, REVOKED, EXPIRED = "active", "paused", "revoked", "expired"

# The lifetimes a member may choose on the consent page (None: until revoked).
LIFETIMES: dict[str, timedelta | None] = {
    "1d": timedelta(days=1),
    "30d": timedelta(days=30),
    "1y": timedelta(days=365),
    "forever": None,
}
LIFETIME_LABELS = {
    "1d": "1 day",
    "30d": "30 days",
    "1y": "1 year",
    "forever": "Until revoked",
}


@dataclass(frozen=True)
class GrantView:
    """A grant as the member's pages show it."""

    grant: Grant
    last_access: datetime | None


async def _event(
    grant: Grant, kind: str, *, reason: str | None = None, terms_version: int | None = None
) -> None:
    await GrantEvent.create(
        id=uuid.uuid4(),
        grant=grant,
        kind=kind,
        at=utcnow(),
        scopes=grant.scopes,
        reason=reason,
        terms_version=terms_version,
    )


async def _subject_for(member_id: uuid.UUID, app_id: uuid.UUID) -> str:
    """The pairwise id this app sees for this member: stable across the member's grants."""
    earlier = await Grant.filter(member_id=member_id, app_id=app_id).first()
    return earlier.subject if earlier else secrets.token_urlsafe(24)


async def create_grant(
    *,
    member_id: uuid.UUID,
    app_id: uuid.UUID,
    scopes: list[str],
    lifetime: str,
    terms_version: int = 0,
) -> Grant:
    """Record a member's consent (call inside the caller's transaction) to the app's terms
    of `terms_version`: the version the consent page showed them.

    A new grant replaces the app's previous live grant (revoked with reason "replaced"), so
    one app holds at most one live grant per member. While sharing is paused, the new grant
    starts paused too.
    """
    if lifetime not in LIFETIMES:
        raise InvalidInputError("Choose how long the app may read your data.")
    if not scopes:
        raise InvalidScopeError("Choose at least one thing to share.")
    now = utcnow()
    span = LIFETIMES[lifetime]
    for old in await Grant.filter(member_id=member_id, app_id=app_id, status__in=[ACTIVE, PAUSED]):
        await _end(old, REVOKED, reason="replaced")
    paused = await SharingPause.exists(member_id=member_id)
    grant = await Grant.create(
        id=uuid.uuid4(),
        member_id=member_id,
        app_id=app_id,
        subject=await _subject_for(member_id, app_id),
        scopes=scopes,
        status=PAUSED if paused else ACTIVE,
        terms_version=terms_version,
        created_at=now,
        expires_at=now + span if span else None,
    )
    await _event(grant, "created", terms_version=terms_version)
    if paused:
        await _event(grant, "paused", reason="sharing_paused")
    return grant


async def _end(grant: Grant, status: str, *, reason: str | None = None) -> None:
    grant.status = status
    grant.ended_at = utcnow()
    await grant.save(update_fields=["status", "ended_at"])
    await OAuthToken.filter(grant_id=grant.id, revoked_at__isnull=True).update(
        revoked_at=grant.ended_at
    )
    await _event(grant, "revoked" if status == REVOKED else status, reason=reason)


async def _member_grant(member_id: uuid.UUID, grant_id: uuid.UUID) -> Grant:
    grant = await Grant.get_or_none(id=grant_id, member_id=member_id)
    if grant is None:
        raise NotFoundError()
    return grant


async def _live_member_grant(member_id: uuid.UUID, grant_id: uuid.UUID) -> Grant:
    """The member's grant, if it has not ended (InvalidInputError otherwise)."""
    grant = await _member_grant(member_id, grant_id)
    if grant.status not in (ACTIVE, PAUSED):
        raise InvalidInputError("This grant has ended.")
    return grant


async def revoke_grant(*, member_id: uuid.UUID, grant_id: uuid.UUID) -> Grant:
    """End a grant now: its tokens stop working on the very next request."""
    async with in_transaction():
        grant = await _member_grant(member_id, grant_id)
        if grant.status in (ACTIVE, PAUSED):
            await _end(grant, REVOKED, reason="member")
    return grant


async def narrow_grant(*, member_id: uuid.UUID, grant_id: uuid.UUID, scopes: list[str]) -> Grant:
    """Keep only some of a grant's scopes, or lower levels of them (`score:reach` to
    `score:reach:band`; history goes with the exact level), never more. Live tokens are
    narrowed with it, on their very next request."""
    async with in_transaction():
        grant = await _live_member_grant(member_id, grant_id)
        keep = narrowed(scopes, grant.scopes)
        if keep is None:
            raise InvalidScopeError("You can only lower what an app may read, never raise it.")
        if not keep:
            raise InvalidScopeError("Keep at least one scope, or revoke the grant.")
        if keep != grant.scopes:
            grant.scopes = keep
            await grant.save(update_fields=["scopes"])
            for token in await OAuthToken.filter(grant_id=grant.id, revoked_at__isnull=True):
                token.scopes = (
                    narrowed(
                        [k for k in keep if any(is_lower_or_same(k, t) for t in token.scopes)],
                        token.scopes,
                    )
                    or []
                )
                await token.save(update_fields=["scopes"])
            await _event(grant, "narrowed")
    return grant


async def lower_score(*, member_id: uuid.UUID, grant_id: uuid.UUID, scope: str, to: str) -> Grant:
    """Share one granted score less precisely (`to` one of its lower levels), or not at all
    (`to` empty): the Apps page's "lower" buttons."""
    grant = await _live_member_grant(member_id, grant_id)
    if scope not in grant.scopes or (to and not is_lower_or_same(to, scope)):
        raise InvalidScopeError("You can only lower what an app may read, never raise it.")
    scopes = [s for s in (to if s == scope else s for s in grant.scopes) if s]
    return await narrow_grant(member_id=member_id, grant_id=grant_id, scopes=scopes)


async def pause_sharing(*, member_id: uuid.UUID) -> int:
    """Suspend every live grant at once; returns how many were paused."""
    async with in_transaction():
        if not await SharingPause.exists(member_id=member_id):
            await SharingPause.create(member_id=member_id, since=utcnow())
        grants = await Grant.filter(member_id=member_id, status=ACTIVE)
        for grant in grants:
            grant.status = PAUSED
            await grant.save(update_fields=["status"])
            await _event(grant, "paused", reason="sharing_paused")
    return len(grants)


async def resume_sharing(*, member_id: uuid.UUID) -> int:
    """Lift the pause: grants paused by it become active again (unless they expired); a
    grant the member paused by itself (`pause_grant`) stays paused."""
    async with in_transaction():
        await SharingPause.filter(member_id=member_id).delete()
        grants = await Grant.filter(member_id=member_id, status=PAUSED, held=False)
        for grant in grants:
            await _activate(grant, reason="sharing_resumed")
    return len(grants)


async def _activate(grant: Grant, *, reason: str) -> None:
    """A paused grant becomes active again, or expired if its time ran out meanwhile."""
    if grant.expires_at is not None and grant.expires_at <= utcnow():
        await _end(grant, EXPIRED)
        return
    grant.status = ACTIVE
    await grant.save(update_fields=["status"])
    await _event(grant, "resumed", reason=reason)


async def pause_grant(*, member_id: uuid.UUID, grant_id: uuid.UUID) -> Grant:
    """Suspend one app's access: its tokens are refused from the next request on, nothing is
    revoked or deleted, and it stays paused until `resume_grant` (resuming all sharing does
    not lift it). Pausing a paused grant changes nothing; an ended one cannot be paused."""
    async with in_transaction():
        grant = await _live_member_grant(member_id, grant_id)
        if not grant.held:
            grant.held = True
            was_active = grant.status == ACTIVE
            grant.status = PAUSED
            await grant.save(update_fields=["held", "status"])
            if was_active:
                await _event(grant, "paused", reason="by_you")
    return grant


async def resume_grant(*, member_id: uuid.UUID, grant_id: uuid.UUID) -> Grant:
    """Lift `pause_grant`. While all sharing is paused the grant stays paused and becomes
    active when sharing resumes; a grant whose time ran out meanwhile ends as expired."""
    async with in_transaction():
        grant = await _live_member_grant(member_id, grant_id)
        if grant.held:
            grant.held = False
            await grant.save(update_fields=["held"])
            if not await SharingPause.exists(member_id=member_id):
                await _activate(grant, reason="by_you")
    return grant


async def is_sharing_paused(*, member_id: uuid.UUID) -> bool:
    return await SharingPause.exists(member_id=member_id)


async def expire_due_grants(*, member_id: uuid.UUID | None = None) -> int:
    """Record `expired` for grants past their end (token checks already refuse them)."""
    query = Grant.filter(status__in=[ACTIVE, PAUSED], expires_at__lte=utcnow())
    if member_id is not None:
        query = query.filter(member_id=member_id)
    count = 0
    async with in_transaction():
        for grant in await query:
            await _end(grant, EXPIRED)
            count += 1
    return count


async def list_grants(
    *, member_id: uuid.UUID, live_only: bool = True, grant_id: uuid.UUID | None = None
) -> list[Grant]:
    """The member's grants (newest first) with their app loaded; `grant_id` picks one."""
    query = Grant.filter(member_id=member_id)
    if grant_id is not None:
        query = query.filter(id=grant_id)
    if live_only:
        query = query.filter(status__in=[ACTIVE, PAUSED])
    return await query.select_related("app").order_by("-created_at")


async def list_events(*, member_id: uuid.UUID, grant_id: uuid.UUID) -> list[GrantEvent]:
    grant = await _member_grant(member_id, grant_id)
    return await GrantEvent.filter(grant_id=grant.id).order_by("at")


def reads_allowed(
    *,
    status: str,
    expires_at: datetime | None,
    agreed_terms: int,
    current_terms: int,
    now: datetime,
) -> bool:
    """THE decision whether a grant lets its app read now, from the grant's columns and the
    app's current terms version: the one place a grant state is decided. The bearer decision
    (`bearer.resolve_bearer`, on its statement's columns) and the ORM checks (`is_live`) call
    it. A grant whose app changed its terms since the member agreed
    refuses reads exactly like a paused one, until the member agrees (`agree_to_terms`)."""
    return (
        status == ACTIVE
        and (expires_at is None or expires_at > now)
        and agreed_terms == current_terms
    )


def app_terms_version(grant: Grant) -> int:
    """The app's current terms version: the grant's app must be loaded (select_related)."""
    return int(grant.app.terms_version)  # type: ignore[attr-defined]


def terms_pending(grant: Grant) -> bool:
    """The app changed its terms since the member agreed (its app must be loaded)."""
    return grant.terms_version != app_terms_version(grant)


def is_live(grant: Grant, now: datetime) -> bool:
    """May the grant's app read now? The grant's app must be loaded (select_related)."""
    return reads_allowed(
        status=grant.status,
        expires_at=grant.expires_at,
        agreed_terms=grant.terms_version,
        current_terms=app_terms_version(grant),
        now=now,
    )


def is_paused_but_current(grant: Grant, now: datetime) -> bool:
    """Not ended, but not reading now: paused, or waiting for the member to agree to terms."""
    not_ended = grant.status in (ACTIVE, PAUSED)
    return not_ended and (grant.expires_at is None or grant.expires_at > now)


async def agree_to_terms(*, member_id: uuid.UUID, grant_id: uuid.UUID, version: int) -> Grant:
    """The member agrees to the app's terms of `version` (the ones the page showed them), so
    the grant reads again (unless paused). If the app changed them again meanwhile, nothing
    changes and the member is asked again (ConflictError)."""
    async with in_transaction():
        grant = await _live_member_grant(member_id, grant_id)
        await grant.fetch_related("app")
        if version != app_terms_version(grant):
            raise ConflictError("The app changed its terms again. Please read them once more.")
        if grant.terms_version != version:
            grant.terms_version = version
            await grant.save(update_fields=["terms_version"])
            await _event(grant, "agreed", reason="terms_changed", terms_version=version)
    return grant
