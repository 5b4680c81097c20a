"""What coop keeps after an erasure: the deletion ledger and webhook delivery status.

Neither table holds personal data. A ledger entry names the member only through a keyed hash
of their id (so a restored backup can find and re-erase them), and the receipt it carries is
counts per kind of data and the ids of the apps that were notified.
"""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model

from coop.consent.models import NoticeDelivery
from coop.members.models import Member

LEDGER_PENDING = "pending"
LEDGER_DONE = "done"


class DeletionLedger(Model):
    """One erasure. `member_hash` is a keyed hash of the member id, never the id itself."""

    id = fields.UUIDField(primary_key=True)
    member_hash = fields.CharField(max_length=64, unique=True)
    state = fields.CharField(max_length=16, default=LEDGER_PENDING)
    requested_at = fields.DatetimeField()
    key_destroyed_at = fields.DatetimeField(null=True)
    completed_at = fields.DatetimeField(null=True)
    receipt: dict[str, Any] = fields.JSONField(default=dict)
    receipt_token_hash = fields.CharField(max_length=64, null=True, unique=True)
    receipt_expires_at = fields.DatetimeField(null=True)
    receipt_downloaded_at = fields.DatetimeField(null=True)

    class Meta:
        table = "deletion_ledger"
        indexes = (("state",),)


DELIVERY_PENDING = "pending"
DELIVERY_DELIVERED = "delivered"
DELIVERY_FAILED = "failed"


class WebhookDelivery(NoticeDelivery):
    """A signed deauthorization notice to one app, and how its delivery went.

    `body` holds the exact signed bytes (the app's pairwise subject for the member) only while
    the delivery is pending: it is cleared when it is delivered or abandoned.
    """

    ledger: fields.ForeignKeyRelation[DeletionLedger] = fields.ForeignKeyField(
        "models.DeletionLedger", related_name="deliveries", on_delete=fields.CASCADE
    )

    class Meta:
        table = "webhook_delivery"
        indexes = (("status", "next_attempt_at"), ("ledger_id",))


class ExportLink(Model):
    """A short-lived, single-use link to download an export (for API clients).

    Only a hash of the link's token is stored. The member must still authenticate to use it.
    """

    id = fields.UUIDField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "models.Member", related_name="export_links", on_delete=fields.CASCADE
    )
    token_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "export_link"
        indexes = (("member_id",), ("expires_at",))
