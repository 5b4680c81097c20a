"""The wrapped data keys: one row per member, the only copy of their key."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class MemberKey(Model):
    """A member's 256-bit data key, wrapped (AES-GCM) by the key-encryption key `kek_id`."""

    member_id = fields.UUIDField(primary_key=True)
    kek_id = fields.CharField(max_length=64, db_index=True)
    wrapped = fields.BinaryField()
    created_at = fields.DatetimeField()
    rotated_at = fields.DatetimeField(null=True)

    class Meta:
        table = "vault_member_key"


class ReceiptKey(Model):
    """A published consent-receipt signing key: its generation and public half only (the
    private half is derived from the server secret when needed)."""

    generation = fields.IntField(primary_key=True)
    kid = fields.CharField(max_length=64, unique=True)
    public_key = fields.CharField(max_length=64)
    created_at = fields.DatetimeField()
    retired_at = fields.DatetimeField(null=True)

    class Meta:
        table = "receipt_key"
