"""The deletion receipt: what was deleted, when, which apps were told, and how it went.

It is built from the ledger entry and the webhook deliveries, neither of which holds personal
data, so it can be shown (and downloaded, through a one-time token) after the member is gone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.transactions import in_transaction

from coop.errors import NotFoundError, ReceiptExpiredError
from coop.portability.models import DeletionLedger, WebhookDelivery
from coop.types import utcnow
from coop.vault import Vault

# Plain words (one, several) for the tables members have rows in. Every member-holding table
# has an entry (tests/portability/test_receipt_words.py): a member never reads a table name.
KINDS: dict[str, tuple[str, str]] = {
    "member": ("account", "account"),
    "vault_member_key": ("data encryption key", "data encryption keys"),
    "web_session": ("signed-in session", "signed-in sessions"),
    "personal_token": ("personal API token", "personal API tokens"),
    "connection": ("connection", "connections"),
    "connector_record": ("synced record", "synced records"),
    "sync_run": ("sync history entry", "sync history entries"),
    "mastodon_app_registration": ("Mastodon app registration", "Mastodon app registrations"),
    "oauth_client_flow": ("unfinished connection sign-in", "unfinished connection sign-ins"),
    "consent_grant": ("app grant", "app grants"),
    "grant_event": ("grant history entry", "grant history entries"),
    "oauth_token": ("app access token", "app access tokens"),
    "authorization_code": ("authorization code", "authorization codes"),
    "access_log": ("access log entry", "access log entries"),
    "sharing_pause": ("sharing pause", "sharing pauses"),
    "app": ("app you registered", "apps you registered"),
    "app_terms": ("version of your apps' terms", "versions of your apps' terms"),
    "export_link": ("export link", "export links"),
    "score_notice": ("score-change notice to an app", "score-change notices to apps"),
    "score": ("score", "scores"),
    "score_preview": ("preview of a new scorer version", "previews of new scorer versions"),
    "scorer_consent": ("scorer you enabled", "scorers you enabled"),
    "scorer_consent_event": ("scorer choice history entry", "scorer choice history entries"),
    # Votes are not member-keyed rows (docs/governance.md): erase counts them itself.
    "governance_ballot": ("vote on a cooperative proposal", "votes on cooperative proposals"),
    "governance_statistics_consent": (
        "choice to share previews for the cooperative's statistics",
        "choices to share previews for the cooperative's statistics",
    ),
}
KIND_LABELS = {table: plural for table, (_, plural) in KINDS.items()}
_SINGULAR = {plural: singular for singular, plural in KINDS.values()}


def table_words(table: str) -> str:
    """The plural words for a table; a table without an entry still never shows raw."""
    return KIND_LABELS.get(table) or table.replace("_", " ")


def counted(n: int, label: str) -> str:
    """A count with its words: "1 signed-in session", "3 signed-in sessions"."""
    return f"{n} {_SINGULAR.get(label, label) if n == 1 else label}"


@dataclass(frozen=True)
class AppNotice:
    app_id: uuid.UUID
    app: str
    status: str
    attempts: int
    delivered_at: datetime | None
    last_error: str


@dataclass(frozen=True)
class Receipt:
    ledger_id: uuid.UUID
    requested_at: datetime
    key_destroyed_at: datetime | None
    completed_at: datetime | None
    deleted: dict[str, int]
    apps: tuple[AppNotice, ...]
    upstream: tuple[dict[str, str], ...]

    def as_json(self) -> dict[str, Any]:
        """The downloadable receipt (documented in docs/export.md)."""
        return {
            "type": "coop.deletion-receipt",
            "version": 1,
            "ledger_id": str(self.ledger_id),
            "requested_at": self.requested_at.isoformat(),
            "key_destroyed_at": _iso(self.key_destroyed_at),
            "completed_at": _iso(self.completed_at),
            "deleted": self.deleted,
            "apps_notified": [
                {
                    "app_id": str(a.app_id),
                    "app": a.app,
                    "status": a.status,
                    "attempts": a.attempts,
                    "delivered_at": _iso(a.delivered_at),
                }
                for a in self.apps
            ],
            "upstream_revocations": list(self.upstream),
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def label_counts(counts: dict[str, int]) -> dict[str, int]:
    labelled: dict[str, int] = {}
    for table, n in sorted(counts.items()):
        label = table_words(table)
        labelled[label] = labelled.get(label, 0) + int(n)
    return labelled


async def build_receipt(ledger_id: uuid.UUID) -> Receipt:
    entry = await DeletionLedger.get(id=ledger_id)
    deliveries = await WebhookDelivery.filter(ledger_id=ledger_id).order_by("app_name")
    return Receipt(
        ledger_id=entry.id,
        requested_at=entry.requested_at,
        key_destroyed_at=entry.key_destroyed_at,
        completed_at=entry.completed_at,
        deleted=label_counts(dict(entry.receipt.get("deleted") or {})),
        apps=tuple(
            AppNotice(d.app_id, d.app_name, d.status, d.attempts, d.delivered_at, d.last_error)
            for d in deliveries
        ),
        upstream=tuple(entry.receipt.get("upstream") or ()),
    )


async def receipt_for_token(*, vault: Vault, token: str, download: bool = False) -> Receipt:
    """The receipt a receipt token points at. Unknown -> NotFoundError; expired ->
    ReceiptExpiredError. The page can be viewed until the token expires; the JSON download
    works once (`download=True` burns it)."""
    if not token or len(token) > 100:
        raise NotFoundError()
    hash_ = vault.token_hash(token)
    async with in_transaction():
        entry = await DeletionLedger.filter(receipt_token_hash=hash_).select_for_update().first()
        if entry is None:
            raise NotFoundError()
        if entry.receipt_expires_at is None or entry.receipt_expires_at <= utcnow():
            raise ReceiptExpiredError()
        if download:
            if entry.receipt_downloaded_at is not None:
                raise ReceiptExpiredError()
            entry.receipt_downloaded_at = utcnow()
            await entry.save(update_fields=["receipt_downloaded_at"])
    return await build_receipt(entry.id)
