"""Personal access tokens: a member's own API tokens, scoped like grants plus member:manage."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta

from tortoise.transactions import in_transaction

from coop.errors import InvalidInputError, NotFoundError
from coop.types import utcnow

from .models import PersonalToken
from .scopes import parse_scopes
from .tokens import new_secret, token_hash

PAT_PREFIX = "coop_pat_"
PAT_LIFETIMES: dict[str, timedelta | None] = {
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
    "1y": timedelta(days=365),
    "forever": None,
}
PAT_LIFETIME_LABELS = {"30d": "30 days", "90d": "90 days", "1y": "1 year", "forever": "No expiry"}
MAX_ACTIVE_TOKENS = 50


@dataclass(frozen=True)
class CreatedPersonalToken:
    row: PersonalToken
    token: str  # shown once, never stored


async def create_personal_token(
    *,
    member_id: uuid.UUID,
    name: str,
    scopes: list[str],
    lifetime: str,
    known_scorers: Collection[str] | None = None,
) -> CreatedPersonalToken:
    clean = " ".join(name.split())
    if not clean or len(clean) > 100:
        raise InvalidInputError("Give the token a name of 1 to 100 characters.")
    if lifetime not in PAT_LIFETIMES:
        raise InvalidInputError("Choose when the token expires.")
    checked = parse_scopes(scopes, known_scorers=known_scorers, personal=True)
    token = new_secret(PAT_PREFIX)
    now = utcnow()
    span = PAT_LIFETIMES[lifetime]
    async with in_transaction():
        live = await PersonalToken.filter(member_id=member_id, revoked_at__isnull=True).count()
        if live >= MAX_ACTIVE_TOKENS:
            raise InvalidInputError(f"At most {MAX_ACTIVE_TOKENS} tokens; revoke one first.")
        row = await PersonalToken.create(
            id=uuid.uuid4(),
            member_id=member_id,
            name=clean,
            token_hash=token_hash(token),
            scopes=checked,
            created_at=now,
            expires_at=now + span if span else None,
        )
    return CreatedPersonalToken(row=row, token=token)


async def list_personal_tokens(*, member_id: uuid.UUID) -> list[PersonalToken]:
    return await PersonalToken.filter(member_id=member_id, revoked_at__isnull=True).order_by(
        "-created_at"
    )


async def revoke_personal_token(*, member_id: uuid.UUID, token_id: uuid.UUID) -> None:
    async with in_transaction():
        updated = await PersonalToken.filter(
            id=token_id, member_id=member_id, revoked_at__isnull=True
        ).update(revoked_at=utcnow())
    if not updated:
        raise NotFoundError()
