"""Authorization codes and OAuth tokens: issue, redeem (atomically), rotate, revoke, inspect.

Codes and tokens come from `secrets.token_urlsafe(32)` (256 bits) and only their SHA-256
hashes are stored. Every redemption claims its row with a conditional UPDATE checked by
rowcount *before* anything is issued, so two concurrent requests cannot both win.
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from tortoise.transactions import in_transaction

from coop.errors import InvalidGrantError, InvalidScopeError
from coop.types import utcnow
from coop.vault import Vault

from .disclosure import narrowed
from .grants import is_live, is_paused_but_current
from .models import AuthorizationCode, Grant, OAuthToken

CODE_LIFETIME = timedelta(seconds=60)
ACCESS_LIFETIME = timedelta(hours=1)
ACCESS_PREFIX, REFRESH_PREFIX, CODE_PREFIX = "coop_at_", "coop_rt_", "coop_ac_"


def new_secret(prefix: str) -> str:
    """A prefixed random value with 256 bits of entropy (the prefix helps secret scanners)."""
    return prefix + secrets.token_urlsafe(32)


def token_hash(value: str) -> str:
    return Vault.token_hash(value)


@dataclass(frozen=True)
class IssuedTokens:
    """What the token endpoint returns (RFC 6749 §5.1). Exists in clear only here."""

    access_token: str
    refresh_token: str | None
    expires_in: int
    scopes: list[str]
    row: OAuthToken

    def response(self) -> dict[str, object]:
        body: dict[str, object] = {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": " ".join(self.scopes),
        }
        if self.refresh_token:
            body["refresh_token"] = self.refresh_token
        return body


async def create_code(
    *,
    grant: Grant,
    client_id: str,
    redirect_uri: str,
    redirect_uri_given: bool,
    code_challenge: str,
) -> str:
    """Store a code for this grant (inside the caller's transaction); return it in clear."""
    code = new_secret(CODE_PREFIX)
    now = utcnow()
    await AuthorizationCode.create(
        id=uuid.uuid4(),
        code_hash=token_hash(code),
        grant=grant,
        client_id=client_id,
        redirect_uri=redirect_uri,
        redirect_uri_given=redirect_uri_given,
        code_challenge=code_challenge,
        scopes=grant.scopes,
        created_at=now,
        expires_at=now + CODE_LIFETIME,
    )
    return code


def verify_pkce(verifier: str | None, challenge: str) -> bool:
    """RFC 7636 §4.6 with S256 only; the verifier must be 43-128 unreserved characters."""
    if not verifier or not 43 <= len(verifier) <= 128:
        return False
    if any(not (c.isascii() and (c.isalnum() or c in "-._~")) for c in verifier):
        return False
    return hmac.compare_digest(create_s256_code_challenge(verifier), challenge)


async def _issue(
    grant: Grant, client_id: str, scopes: list[str], family_id: uuid.UUID
) -> IssuedTokens:
    now = utcnow()
    access_expires = now + ACCESS_LIFETIME
    if grant.expires_at is not None:
        access_expires = min(access_expires, grant.expires_at)
    access, refresh = new_secret(ACCESS_PREFIX), new_secret(REFRESH_PREFIX)
    row = await OAuthToken.create(
        id=uuid.uuid4(),
        access_hash=token_hash(access),
        refresh_hash=token_hash(refresh),
        grant=grant,
        client_id=client_id,
        family_id=family_id,
        scopes=scopes,
        created_at=now,
        access_expires_at=access_expires,
        refresh_expires_at=grant.expires_at,
    )
    expires_in = max(0, int((access_expires - now).total_seconds()))
    return IssuedTokens(access, refresh, expires_in, scopes, row)


async def _revoke_family(family_id: uuid.UUID, now: datetime) -> None:
    await OAuthToken.filter(family_id=family_id, revoked_at__isnull=True).update(revoked_at=now)


async def exchange_code(
    *, code: str, client_id: str, redirect_uri: str | None, code_verifier: str | None
) -> IssuedTokens:
    """RFC 6749 §4.1.3 + RFC 7636 §4.6. Every refusal is `invalid_grant`.

    A code presented again after it was redeemed revokes the tokens it produced (RFC 6749
    §4.1.2). The claim is a conditional UPDATE whose rowcount decides the single winner.
    """
    now = utcnow()
    row = await AuthorizationCode.get_or_none(code_hash=token_hash(code))
    if row is None:
        raise InvalidGrantError("The authorization code is invalid.")
    family_id = row.id  # the code's id names the family of tokens it produced
    if row.used_at is not None:
        await _revoke_family(family_id, now)
        raise InvalidGrantError("The authorization code was already used.")
    if not hmac.compare_digest(row.client_id, client_id):
        raise InvalidGrantError("The authorization code was issued to another client.")
    if row.expires_at <= now:
        raise InvalidGrantError("The authorization code has expired.")
    # §4.1.3: identical to the authorization request's; optional only if that omitted it.
    allowed = {row.redirect_uri} if row.redirect_uri_given else {None, "", row.redirect_uri}
    if redirect_uri not in allowed:
        raise InvalidGrantError("Invalid 'redirect_uri' in request.")
    if not verify_pkce(code_verifier, row.code_challenge):
        raise InvalidGrantError("The code_verifier does not match the code_challenge.")
    async with in_transaction():
        claimed = await AuthorizationCode.filter(id=row.id, used_at__isnull=True).update(
            used_at=now
        )
        if claimed == 1:
            grant = await Grant.get(id=row.grant_id).select_related("app")
            # A grant given while sharing is paused still yields tokens: they work once the
            # member resumes (every use checks the grant's live state).
            if not is_live(grant, now) and not is_paused_but_current(grant, now):
                raise InvalidGrantError("The member's grant is no longer active.")
            # The grant's scopes as they are now: narrowed since the code was made, the code
            # yields no more than the member still allows.
            return await _issue(grant, client_id, list(grant.scopes), family_id)
    # Another redemption claimed the code at the same moment: a reuse. The revocation runs
    # after this transaction is over; raised inside it, it would be rolled back with it.
    await _revoke_family(family_id, now)
    raise InvalidGrantError("The authorization code was already used.")


async def refresh(*, refresh_token: str, client_id: str, scope: str | None) -> IssuedTokens:
    """RFC 6749 §6 with rotation (RFC 9700 §4.14.2): every use returns a new refresh token,
    and presenting a used one revokes the whole family (no reuse leeway)."""
    now = utcnow()
    row = await OAuthToken.get_or_none(refresh_hash=token_hash(refresh_token)).select_related(
        "grant", "grant__app"
    )
    if row is None or not hmac.compare_digest(row.client_id, client_id):
        raise InvalidGrantError("The refresh token is invalid.")
    if row.refresh_used_at is not None:
        await _revoke_family(row.family_id, now)
        raise InvalidGrantError("The refresh token was already used.")
    if row.revoked_at is not None or (
        row.refresh_expires_at is not None and row.refresh_expires_at <= now
    ):
        raise InvalidGrantError("The refresh token is no longer valid.")
    if not is_live(row.grant, now):
        raise InvalidGrantError("The member's grant is no longer active.")
    scopes = list(row.scopes)
    if scope is not None and scope.strip():
        asked = list(dict.fromkeys(s for s in scope.split(" ") if s))
        narrower = narrowed(asked, scopes)
        if not narrower:
            # RFC 6749 §6 allows only a subset of the grant (here also a lower disclosure
            # level of a granted score). Stock clients (authlib) re-send the scopes they
            # first asked for, so name what the member actually granted.
            raise InvalidScopeError(
                "A refresh cannot ask for more than was granted. Granted now: "
                f"{' '.join(scopes)}. Refresh without `scope`, or with these or fewer."
            )
        scopes = narrower
    async with in_transaction():
        claimed = await OAuthToken.filter(
            id=row.id, refresh_used_at__isnull=True, revoked_at__isnull=True
        ).update(refresh_used_at=now)
        if claimed == 1:
            return await _issue(row.grant, client_id, scopes, row.family_id)
    # Used (or revoked) at the same moment by another request: revoke the family outside the
    # finished transaction, so the revocation is not rolled back with the refusal.
    await _revoke_family(row.family_id, now)
    raise InvalidGrantError("The refresh token was already used.")


async def find_token(value: str) -> tuple[OAuthToken, str] | None:
    """The token row for an access or refresh token, and which kind it is."""
    if len(value) > 200:
        return None
    digest = token_hash(value)
    if value.startswith(REFRESH_PREFIX):
        row = await OAuthToken.get_or_none(refresh_hash=digest).select_related(
            "grant", "grant__app"
        )
        return (row, "refresh_token") if row else None
    row = await OAuthToken.get_or_none(access_hash=digest).select_related("grant", "grant__app")
    return (row, "access_token") if row else None


async def revoke_token(*, token: str, client_id: str) -> bool:
    """RFC 7009 §2.1. Revoking a refresh token also ends the access tokens of its family.

    Unknown tokens and tokens of other clients change nothing (the caller answers 200
    either way, so the endpoint is no oracle). Returns whether anything was revoked.
    """
    found = await find_token(token)
    if found is None or not hmac.compare_digest(found[0].client_id, client_id):
        return False
    row, kind = found
    now = utcnow()
    async with in_transaction():
        if kind == "refresh_token":
            await _revoke_family(row.family_id, now)
        else:
            await OAuthToken.filter(id=row.id, revoked_at__isnull=True).update(revoked_at=now)
    return True


def is_active(row: OAuthToken, kind: str, now: datetime) -> bool:
    if row.revoked_at is not None or not is_live(row.grant, now):
        return False
    if kind == "refresh_token":
        return row.refresh_used_at is None and (
            row.refresh_expires_at is None or row.refresh_expires_at > now
        )
    return row.access_expires_at > now


async def introspect(*, token: str, client_id: str, issuer: str) -> dict[str, object]:
    """RFC 7662 §2.2 for the calling client's own tokens; anything else is inactive."""
    found = await find_token(token)
    now = utcnow()
    if found is None or not hmac.compare_digest(found[0].client_id, client_id):
        return {"active": False}
    row, kind = found
    if not is_active(row, kind, now):
        return {"active": False}
    expires = row.access_expires_at if kind == "access_token" else row.refresh_expires_at
    info: dict[str, object] = {
        "active": True,
        "scope": " ".join(row.scopes),
        "client_id": row.client_id,
        "token_type": "Bearer" if kind == "access_token" else "refresh_token",
        "iat": int(row.created_at.timestamp()),
        "sub": row.grant.subject,
        "iss": issuer,
    }
    if expires is not None:
        info["exp"] = int(expires.timestamp())
    return info


async def purge_stale(*, older_than: timedelta = timedelta(days=30)) -> int:
    """Delete codes and token rows that can never be valid again (a periodic job's work).

    Rows are kept `older_than` past their end so reuse of a recently spent code or refresh
    token is still recognised and revokes its family. A row ends when it is revoked, when
    both its tokens expired, or when its refresh token was spent (exchanged for the next
    row) and its access token expired: without the last rule, a grant "until revoked" would
    keep one row per hourly refresh forever.
    """
    cutoff = utcnow() - older_than
    async with in_transaction():
        codes = await AuthorizationCode.filter(expires_at__lt=cutoff).delete()
        revoked = await OAuthToken.filter(revoked_at__lt=cutoff).delete()
        ended = await OAuthToken.filter(
            refresh_expires_at__lt=cutoff, access_expires_at__lt=cutoff
        ).delete()
        spent = await OAuthToken.filter(
            refresh_used_at__lt=cutoff, access_expires_at__lt=cutoff
        ).delete()
    return int(codes) + int(revoked) + int(ended) + int(spent)
