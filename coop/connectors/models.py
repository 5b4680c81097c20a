"""Connections (a member's authorization of one source), their records and sync history."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from coop.members.models import Member

STATUSES = ("ok", "syncing", "needs_reauthorization", "failing", "throttled")


class Connection(Model):
    """One data source a member connected. Config, credentials and cursor are sealed.

    `generation` changes whenever the authorization behind the connection changes (reconnect),
    so a sync that started under an older authorization cannot commit. `lease_until` bounds
    the `syncing` claim, so a crashed worker never blocks the connection for good.
    """

    id = fields.UUIDField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "models.Member", related_name="connections", on_delete=fields.CASCADE
    )
    connector = fields.CharField(max_length=64)
    status = fields.CharField(max_length=32, default="ok")
    status_reason = fields.CharField(max_length=255, default="")
    config_sealed = fields.BinaryField()
    credentials_sealed = fields.BinaryField(null=True)
    cursor_sealed = fields.BinaryField(null=True)
    generation = fields.IntField(default=1)
    lease_until = fields.DatetimeField(null=True)
    last_sync_at = fields.DatetimeField(null=True)
    next_sync_at = fields.DatetimeField(null=True)
    records_count = fields.IntField(default=0)
    created_at = fields.DatetimeField()

    class Meta:
        table = "connection"
        indexes = (("member_id",), ("next_sync_at",))


class Record(Model):
    """One normalized item. Only kind, occurred_at and ids are in clear (see docs/connectors.md).

    The primary key is derived from (connection, external_key), so an upsert keeps the row id
    that the sealed body is bound to.
    """

    id = fields.UUIDField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "models.Member", related_name="records", on_delete=fields.CASCADE
    )
    connection: fields.ForeignKeyRelation[Connection] = fields.ForeignKeyField(
        "models.Connection", related_name="records", on_delete=fields.CASCADE
    )
    kind = fields.CharField(max_length=32)
    external_key = fields.CharField(max_length=64)
    occurred_at = fields.DatetimeField()
    body_sealed = fields.BinaryField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "connector_record"
        unique_together = (("connection_id", "external_key"),)
        indexes = (("member_id", "kind"),)


class SyncRun(Model):
    """One sync attempt, for the health history. No member data: counts and codes only."""

    id = fields.UUIDField(primary_key=True)
    connection: fields.ForeignKeyRelation[Connection] = fields.ForeignKeyField(
        "models.Connection", related_name="runs", on_delete=fields.CASCADE
    )
    started_at = fields.DatetimeField()
    finished_at = fields.DatetimeField(null=True)
    outcome = fields.CharField(max_length=32, default="running")
    records_added = fields.IntField(default=0)
    error_code = fields.CharField(max_length=64, default="")

    class Meta:
        table = "sync_run"
        indexes = (("connection_id", "started_at"),)
