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
