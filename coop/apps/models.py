"""Registered third-party apps (OAuth 2 clients)."""

from __future__ import annotations

import uuid

from tortoise import fields
from tortoise.models import Model

from coop.members.models import Member


class App(Model):
    """An OAuth 2 client. Its secrets are never stored: a hash of the client secret and a salt."""

    id = fields.UUIDField(primary_key=True)
    client_id = fields.CharField(max_length=64, unique=True)
    secret_hash = fields.CharField(max_length=64, null=True)
    name = fields.CharField(max_length=100)
    homepage = fields.CharField(max_length=500, null=True)
    redirect_uris: list[str] = fields.JSONField(default=list)
    public = fields.BooleanField(default=False)
    webhook_url = fields.CharField(max_length=500, null=True)
    webhook_salt = fields.CharField(max_length=64, null=True)
    # Also send signed "score changed" notices to webhook_url (docs/apps.md §10).
    score_notices = fields.BooleanField(default=False)
    owner: fields.ForeignKeyNullableRelation[Member] = fields.ForeignKeyField(
        "models.Member", related_name="apps", null=True, on_delete=fields.CASCADE
    )
    owner_id: uuid.UUID | None
    created_at = fields.DatetimeField()
    # The version of what the app declares (AppTerms) that is in force; 0: it declared nothing.
    terms_version = fields.IntField(default=0)

    class Meta:
        table = "app"
        indexes = (("owner_id",),)

    @property
    def token_endpoint_auth_method(self) -> str:
        return "none" if self.public else "client_secret_basic"


class AppTerms(Model):
    """What an app says it does with what it reads: one row per version, never changed.

    A grant records the version the member agreed to, so the exact words they saw stay on
    the record (consent receipts, grant history) after the app declares new ones.
    """

    id = fields.UUIDField(primary_key=True)
    app: fields.ForeignKeyRelation[App] = fields.ForeignKeyField(
        "models.App", related_name="terms", on_delete=fields.CASCADE
    )
    app_id: uuid.UUID
    version = fields.IntField()
    purpose = fields.TextField(null=True)
    score_purposes: dict[str, str] = fields.JSONField(default=dict)
    retention_days = fields.IntField(null=True)
    policy_uri = fields.CharField(max_length=500, null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "app_terms"
        unique_together = (("app_id", "version"),)
