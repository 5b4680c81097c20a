"""Server-side web sessions: the cookie carries a random token, the database only its hash."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from coop.config import Settings
from coop.errors import NotFoundError
from coop.members.devices import device_label
from coop.members.models import Member, WebSession
from coop.types import utcnow
from coop.vault import Vault

# last_seen_at is written at most once a minute, so browsing is not one UPDATE per request,
# and at most every tenth of the idle timeout, so activity always keeps a session alive.
TOUCH_INTERVAL = timedelta(seconds=60)
TOUCH_FRACTION = 10


def touch_interval(settings: Settings) -> timedelta:
    """How stale last_seen_at may get: a session with a request at least every
    idle - touch_interval seconds never idles out, and one without ends within idle seconds."""
    return min(TOUCH_INTERVAL, timedelta(seconds=settings.session_idle_seconds / TOUCH_FRACTION))


_TABLE = "web_session"


@dataclass(frozen=True)
class SessionInfo:
    """One active session as the account page shows it."""

    id: uuid.UUID
    device: str
    created_at: datetime
    last_seen_at: datetime
    current: bool


def new_token() -> str:
    """256 random bits (ASVS 7.2.3 asks for at least 128)."""
    return secrets.token_urlsafe(32)


async def start(
    *,
    vault: Vault,
    settings: Settings,
    member: Member,
    user_agent: str | None,
    replacing_token: str | None = None,
) -> tuple[WebSession, str]:
    """Create a fresh session (a new token at every login: no session fixation, WS-02).

    Any session the browser carried before is deleted, and so are the member's expired ones.
    """
    now = utcnow()
    if replacing_token:
        await WebSession.filter(token_hash=vault.token_hash(replacing_token)).delete()
    await purge_expired(settings=settings, member_id=member.id)
    token = new_token()
    session_id = uuid.uuid4()
    member_cipher = await vault.cipher_for(member.id)
    session = await WebSession.create(
        id=session_id,
        token_hash=vault.token_hash(token),
        member=member,
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(seconds=settings.session_absolute_seconds),
        reauthenticated_at=now,
        device_sealed=member_cipher.seal(
            device_label(user_agent), table=_TABLE, column="device", row=session_id
        ),
    )
    return session, token


def _is_live(session: WebSession, *, settings: Settings, now: datetime) -> bool:
    idle = timedelta(seconds=settings.session_idle_seconds)
    return session.expires_at > now and session.last_seen_at + idle > now


async def resolve(
    *, vault: Vault, settings: Settings, token: str
) -> tuple[Member, WebSession] | None:
    """The member and session behind a cookie token, or None when unknown or timed out.

    Idle and absolute timeouts both apply; activity moves last_seen_at, never expires_at (WS-04).
    """
    if not token or len(token) > 128:
        return None
    session = (
        await WebSession.filter(token_hash=vault.token_hash(token)).select_related("member").first()
    )
    if session is None:
        return None
    now = utcnow()
    if not _is_live(session, settings=settings, now=now):
        await WebSession.filter(id=session.id).delete()
        return None
    if now - session.last_seen_at >= touch_interval(settings):
        session.last_seen_at = now
        await WebSession.filter(id=session.id).update(last_seen_at=now)
    return session.member, session


async def end(*, vault: Vault, token: str) -> None:
    """Log out: the session row is deleted, so the cookie is worthless from now on (WS-03)."""
    await WebSession.filter(token_hash=vault.token_hash(token)).delete()


async def end_by_id(*, session_id: uuid.UUID) -> None:
    await WebSession.filter(id=session_id).delete()


async def end_other(*, member_id: uuid.UUID, session_id: uuid.UUID) -> None:
    """End one of the member's other sessions. NotFoundError for anyone else's session."""
    deleted = await WebSession.filter(id=session_id, member_id=member_id).delete()
    if not deleted:
        raise NotFoundError("That session has already ended.", code="session_not_found")


async def end_all_except(*, member_id: uuid.UUID, keep: uuid.UUID | None) -> int:
    query = WebSession.filter(member_id=member_id)
    if keep is not None:
        query = query.exclude(id=keep)
    count: int = await query.delete()
    return count


async def mark_reauthenticated(*, session_id: uuid.UUID) -> None:
    await WebSession.filter(id=session_id).update(reauthenticated_at=utcnow())


async def list_active(
    *, vault: Vault, settings: Settings, member_id: uuid.UUID, current: uuid.UUID | None
) -> list[SessionInfo]:
    now = utcnow()
    member_cipher = await vault.cipher_for(member_id)
    rows = await WebSession.filter(member_id=member_id).order_by("-last_seen_at")
    infos = []
    for row in rows:
        if not _is_live(row, settings=settings, now=now):
            continue
        device = (
            member_cipher.open_text(row.device_sealed, table=_TABLE, column="device", row=row.id)
            if row.device_sealed
            else "Unknown browser"
        )
        infos.append(
            SessionInfo(
                id=row.id,
                device=device,
                created_at=row.created_at,
                last_seen_at=row.last_seen_at,
                current=row.id == current,
            )
        )
    infos.sort(key=lambda s: (not s.current, -s.last_seen_at.timestamp()))
    return infos


async def purge_expired(*, settings: Settings, member_id: uuid.UUID | None = None) -> int:
    """Delete sessions past their idle or absolute timeout (they can never be used again):
    one member's (at each login), or everyone's (the hourly housekeeping)."""
    now = utcnow()
    idle_cutoff = now - timedelta(seconds=settings.session_idle_seconds)
    sessions = WebSession.all() if member_id is None else WebSession.filter(member_id=member_id)
    count: int = await sessions.filter(expires_at__lte=now).delete()
    count += await sessions.filter(last_seen_at__lte=idle_cutoff).delete()
    return count
