"""Export links for API clients: short-lived, single-use, and still bound to the member.

`request_export` (called by the GraphQL layer) returns a path with a random token. Fetching
it needs that token AND the same member's credentials (a personal API token as a bearer, or
the web session): unauthenticated or another member -> 404, expired or used -> 410 (EX-03).
Nothing is stored but the token's hash: the archive is built while it downloads.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.transactions import in_transaction

from coop.errors import ExportLinkExpiredError, NotFoundError
from coop.portability.models import ExportLink
from coop.types import utcnow
from coop.vault import Vault

LINK_TTL = timedelta(minutes=10)
DOWNLOAD_PATH = "/account/export/download"


@dataclass(frozen=True)
class IssuedExportLink:
    """The token exists in clear only here. `path` is relative to COOP_ISSUER."""

    token: str
    path: str
    expires_at: datetime


async def request_export(*, vault: Vault, member_id: uuid.UUID) -> IssuedExportLink:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    async with in_transaction():
        await ExportLink.filter(member_id=member_id, expires_at__lte=now).delete()
        link = await ExportLink.create(
            id=uuid.uuid4(),
            member_id=member_id,
            token_hash=vault.token_hash(token),
            created_at=now,
            expires_at=now + LINK_TTL,
        )
    return IssuedExportLink(token, f"{DOWNLOAD_PATH}?link={token}", link.expires_at)


async def redeem_export_link(*, vault: Vault, token: str, member_id: uuid.UUID | None) -> uuid.UUID:
    """Claim a link for `member_id` (the authenticated member, or None): returns the member
    to export. NotFoundError unless it is theirs; ExportLinkExpiredError once used or old."""
    if member_id is None or not token or len(token) > 100:
        raise NotFoundError()
    now = utcnow()
    async with in_transaction():
        link = (
            await ExportLink.filter(token_hash=vault.token_hash(token), member_id=member_id)
            .select_for_update()
            .first()
        )
        if link is None:
            raise NotFoundError()
        if link.used_at is not None or link.expires_at <= now:
            raise ExportLinkExpiredError()
        claimed = await ExportLink.filter(id=link.id, used_at__isnull=True).update(used_at=now)
        if claimed != 1:
            raise ExportLinkExpiredError()
    return member_id
