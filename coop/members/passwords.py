"""Password hashing with argon2id, off the event loop, and the password policy."""

from __future__ import annotations

import anyio
import anyio.to_thread
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from coop.errors import InvalidInputError

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024

# OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1 (about 20 ms here).
HASHER = PasswordHasher(
    time_cost=2, memory_cost=19456, parallelism=1, hash_len=32, salt_len=16, type=Type.ID
)

# Each hash takes ~19 MiB and a core for ~20 ms: a small limiter keeps a burst of logins from
# exhausting memory and starving the rest of the server (excess requests wait their turn).
HASH_CONCURRENCY = 2
_limiter: anyio.CapacityLimiter | None = None


def _get_limiter() -> anyio.CapacityLimiter:
    global _limiter
    if _limiter is None:
        _limiter = anyio.CapacityLimiter(HASH_CONCURRENCY)
    return _limiter


def check_password_policy(password: str) -> None:
    """At least 12 and at most 1024 characters (NIST SP 800-63B: length, not composition)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInputError(
            f"Choose a password of at least {MIN_PASSWORD_LENGTH} characters.",
            code="password_too_short",
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInputError(
            f"Choose a password of at most {MAX_PASSWORD_LENGTH} characters.",
            code="password_too_long",
        )


async def hash_password(password: str) -> str:
    return await anyio.to_thread.run_sync(HASHER.hash, password, limiter=_get_limiter())


def _verify(stored: str, password: str) -> bool:
    try:
        return HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify_password(stored: str, password: str) -> bool:
    """True when `password` matches `stored`. Runs the full argon2 computation either way."""
    if len(password) > MAX_PASSWORD_LENGTH:
        password = password[:MAX_PASSWORD_LENGTH]  # bound the work; still a full verify
        stored = DUMMY_HASH  # an over-long password never matches a real account
    return await anyio.to_thread.run_sync(_verify, stored, password, limiter=_get_limiter())


def needs_rehash(stored: str) -> bool:
    return HASHER.check_needs_rehash(stored)


# Verified against when the email is unknown, so a miss costs the same time as a wrong password.
DUMMY_HASH = HASHER.hash("coop dummy password for constant-time misses")
