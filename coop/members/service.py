"""Member accounts: sign up, log in, passwords, profile (email and handle, both sealed)."""

from __future__ import annotations

import logging
import secrets
import unicodedata
import uuid
from dataclasses import dataclass

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from coop.config import Settings
from coop.errors import AuthenticationError, ConflictError, InvalidInputError, SessionEndedError
from coop.members import passwords, sessions, throttle
from coop.members.models import Member, WebSession
from coop.members.sessions import SessionInfo
from coop.types import utcnow
from coop.vault import Vault

log = logging.getLogger("coop.members")

_TABLE = "member"
MAX_EMAIL_LENGTH = 254
MAX_HANDLE_LENGTH = 40


@dataclass(frozen=True)
class Profile:
    """What the account page shows about a member (opened from the sealed columns)."""

    id: uuid.UUID
    email: str
    handle: str


def normalize_email(email: str) -> str:
    """The form used for the blind index: NFKC, trimmed, case-folded."""
    return unicodedata.normalize("NFKC", email).strip().casefold()


def check_email(email: str) -> str:
    normalized = normalize_email(email)
    local, _, domain = normalized.rpartition("@")
    if (
        not local
        or "." not in domain.strip(".")
        or len(normalized) > MAX_EMAIL_LENGTH
        or any(c.isspace() or unicodedata.category(c).startswith("C") for c in normalized)
    ):
        raise InvalidInputError("Enter a valid email address.", code="invalid_email")
    return normalized


def check_handle(handle: str) -> str:
    handle = unicodedata.normalize("NFKC", handle).strip()
    if not 2 <= len(handle) <= MAX_HANDLE_LENGTH or any(
        unicodedata.category(c).startswith("C") for c in handle
    ):
        raise InvalidInputError(
            f"Choose a handle of 2 to {MAX_HANDLE_LENGTH} characters.", code="invalid_handle"
        )
    return handle


def default_handle() -> str:
    return f"member-{secrets.token_hex(2)}"


def email_index(vault: Vault, email: str) -> str:
    return vault.blind_index(normalize_email(email), purpose="email")


async def create_member(*, vault: Vault, email: str, password: str) -> Member:
    """Create an account with its data key, in one transaction.

    Raises ConflictError (code `email_taken`) when the email exists. Transports must not show
    that difference (no account enumeration), and both outcomes do the same work: hash, seal,
    insert (a taken email is refused by the unique index and the transaction rolls back).
    """
    normalized = check_email(email)
    passwords.check_password_policy(password)
    password_hash = await passwords.hash_password(password)
    index = email_index(vault, normalized)
    # No existence check first: a taken email fails on the unique index inside the same
    # transaction, after the same work, so both outcomes cost the same time.
    member_id = uuid.uuid4()
    now = utcnow()
    try:
        async with in_transaction():
            member_cipher = await vault.create_key(member_id)
            return await Member.create(
                id=member_id,
                email_index=index,
                email_sealed=member_cipher.seal(
                    normalized, table=_TABLE, column="email", row=member_id
                ),
                handle_sealed=member_cipher.seal(
                    default_handle(), table=_TABLE, column="handle", row=member_id
                ),
                password_hash=password_hash,
                created_at=now,
                password_changed_at=now,
            )
    except IntegrityError:  # the email is taken (possibly by a concurrent sign-up)
        raise ConflictError(
            "An account with this email already exists.", code="email_taken"
        ) from None


async def authenticate(
    *, vault: Vault, settings: Settings, email: str, password: str, client_address: str
) -> Member:
    """The member for these credentials, or AuthenticationError / RateLimitedError.

    An unknown email still costs one argon2 verification, so timing does not reveal accounts.
    """
    index = email_index(vault, email)
    keys = throttle.throttle_keys(vault=vault, email_index=index, client_address=client_address)
    await throttle.check(settings=settings, keys=keys)
    member = await Member.get_or_none(email_index=index)
    stored = member.password_hash if member else passwords.DUMMY_HASH
    matches = await passwords.verify_password(stored, password)
    if member is None or not matches:
        await throttle.record_failure(settings=settings, keys=keys)
        log.info("login failed", extra={"code": AuthenticationError.code})
        raise AuthenticationError()
    await throttle.clear(key=keys[0])
    if passwords.needs_rehash(member.password_hash):
        member.password_hash = await passwords.hash_password(password)
        await member.save(update_fields=["password_hash"])
    return member


async def log_in(
    *,
    vault: Vault,
    settings: Settings,
    email: str,
    password: str,
    client_address: str,
    user_agent: str | None,
    replacing_token: str | None,
) -> tuple[Member, str]:
    """Authenticate and start a new session. Returns the member and the new cookie token."""
    member = await authenticate(
        vault=vault,
        settings=settings,
        email=email,
        password=password,
        client_address=client_address,
    )
    session, token = await sessions.start(
        vault=vault,
        settings=settings,
        member=member,
        user_agent=user_agent,
        replacing_token=replacing_token,
    )
    log.info("login", extra={"member": str(member.id), "session": str(session.id)})
    return member, token


async def log_out(*, vault: Vault, token: str) -> None:
    await sessions.end(vault=vault, token=token)


async def reauthenticate(
    *,
    vault: Vault,
    settings: Settings,
    member: Member,
    session_id: uuid.UUID,
    password: str,
    client_address: str,
) -> None:
    """Step-up (WS-08): check the password again and mark the session as freshly verified."""
    await _verify_member_password_throttled(
        vault=vault,
        settings=settings,
        member=member,
        password=password,
        client_address=client_address,
        session_id=session_id,
    )
    await sessions.mark_reauthenticated(session_id=session_id)


async def _verify_member_password_throttled(
    *,
    vault: Vault,
    settings: Settings,
    member: Member,
    password: str,
    client_address: str,
    session_id: uuid.UUID | None,
) -> None:
    """Check a logged-in member's password (AuthenticationError `invalid_password`).

    Misses count per session and per client address, not per email: whoever holds a stolen
    session cookie must not be able to guess the password, nor to lock the member out of
    logging in by using up the email's login budget. The miss that uses up the session's
    budget ends the session (SessionEndedError): its holder has to log in, where the
    per-email limit applies. The address limit answers RateLimitedError as at login.
    """
    email_key, address_key = throttle.throttle_keys(
        vault=vault, email_index=member.email_index, client_address=client_address
    )
    own_key = f"session:{session_id}" if session_id is not None else email_key
    keys = [own_key, address_key]
    await throttle.check(settings=settings, keys=keys)
    if await passwords.verify_password(member.password_hash, password):
        return
    await throttle.record_failure(settings=settings, keys=keys)
    if session_id is not None and await throttle.used_up(settings=settings, key=own_key):
        await sessions.end_by_id(session_id=session_id)
        await throttle.clear(key=own_key)
        log.warning("session ended after wrong passwords", extra={"session": str(session_id)})
        raise SessionEndedError(
            "Too many wrong passwords: you were logged out. Log in again to continue."
        )
    raise AuthenticationError("The password is incorrect.", code="invalid_password")


async def list_sessions(
    *, vault: Vault, settings: Settings, member: Member, current: uuid.UUID | None
) -> list[sessions.SessionInfo]:
    return await sessions.list_active(
        vault=vault, settings=settings, member_id=member.id, current=current
    )


async def end_other_sessions(*, member: Member, keep: uuid.UUID) -> int:
    """Log out everywhere else: end every session of the member except `keep`."""
    ended = await sessions.end_all_except(member_id=member.id, keep=keep)
    log.info("other sessions ended", extra={"member": str(member.id), "sessions_ended": ended})
    return ended


async def end_session(*, member: Member, session_id: uuid.UUID) -> None:
    """End one of the member's sessions (NotFoundError `session_not_found` otherwise)."""
    await sessions.end_other(member_id=member.id, session_id=session_id)
    log.info("session ended", extra={"member": str(member.id), "session": str(session_id)})


async def change_password(
    *,
    vault: Vault,
    settings: Settings,
    member: Member,
    current_password: str,
    new_password: str,
    keep_session: uuid.UUID | None,
    client_address: str,
) -> int:
    """Set a new password and end every other session. Returns how many sessions ended.

    The current password is checked under the login throttle (RateLimitedError), like step-up.
    """
    await _verify_member_password_throttled(
        vault=vault,
        settings=settings,
        member=member,
        password=current_password,
        client_address=client_address,
        session_id=keep_session,
    )
    passwords.check_password_policy(new_password)
    new_hash = await passwords.hash_password(new_password)
    async with in_transaction():
        await Member.filter(id=member.id).update(
            password_hash=new_hash, password_changed_at=utcnow()
        )
        ended = await sessions.end_all_except(member_id=member.id, keep=keep_session)
        if keep_session is not None:  # the password was just entered: a fresh step-up
            await sessions.mark_reauthenticated(session_id=keep_session)
    member.password_hash = new_hash
    log.info("password changed", extra={"member": str(member.id), "sessions_ended": ended})
    return ended


async def get_profile(*, vault: Vault, member: Member) -> Profile:
    member_cipher = await vault.cipher_for(member.id)
    return Profile(
        id=member.id,
        email=member_cipher.open_text(
            member.email_sealed, table=_TABLE, column="email", row=member.id
        ),
        handle=member_cipher.open_text(
            member.handle_sealed, table=_TABLE, column="handle", row=member.id
        ),
    )


async def update_handle(*, vault: Vault, member: Member, handle: str) -> str:
    handle = check_handle(handle)
    member_cipher = await vault.cipher_for(member.id)
    sealed = member_cipher.seal(handle, table=_TABLE, column="handle", row=member.id)
    await Member.filter(id=member.id).update(handle_sealed=sealed)
    member.handle_sealed = sealed
    return handle


async def get_member(*, member_id: uuid.UUID) -> Member | None:
    return await Member.get_or_none(id=member_id)


async def find_member_by_email(*, vault: Vault, email: str) -> Member | None:
    """The member with this email, for operator tools (`coop dev`); never for a transport,
    where the difference would enumerate accounts."""
    return await Member.get_or_none(email_index=email_index(vault, email))


async def count_members(*, excluding_index: str | None = None) -> int:
    """How many members there are (besides the one with `excluding_index`, when given)."""
    query = Member.all()
    if excluding_index is not None:
        query = query.exclude(email_index=excluding_index)
    return await query.count()


async def reset_password(*, member: Member, password: str) -> None:
    """Operator tools only (`coop dev`'s sample member): set a password without the current
    one and end every session."""
    passwords.check_password_policy(password)
    new_hash = await passwords.hash_password(password)
    async with in_transaction():
        await Member.filter(id=member.id).update(
            password_hash=new_hash, password_changed_at=utcnow()
        )
        await sessions.end_all_except(member_id=member.id, keep=None)
    member.password_hash = new_hash


__all__ = [
    "Member",
    "Profile",
    "SessionInfo",
    "WebSession",
    "authenticate",
    "change_password",
    "check_email",
    "count_members",
    "create_member",
    "end_other_sessions",
    "end_session",
    "find_member_by_email",
    "get_profile",
    "list_sessions",
    "log_in",
    "log_out",
    "reauthenticate",
    "reset_password",
    "update_handle",
]
