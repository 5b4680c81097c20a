"""Grants, their event history, authorization codes, tokens and the access log."""

from __future__ import annotations

import uuid

from tortoise import fields
from tortoise.models import Model

from coop.members.models import Member


class Grant(Model):
    """What a member allowed one app to read, until when. Changes are recorded as GrantEvents.

    `status` is the current state (active, paused, revoked, expired) kept for the token
    check. `subject` is the pairwise id the app sees instead of the member id. `held` marks a
    grant the member paused by itself: it stays paused when all sharing resumes.
    """

    id = fields.UUIDField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "models.Member", related_name="grants", on_delete=fields.CASCADE
    )
    member_id: uuid.UUID
    app: fields.ForeignKeyRelation[Model] = fields.ForeignKeyField(
        "models.App", related_name="grants", on_delete=fields.CASCADE
    )
    app_id: uuid.UUID
    subject = fields.CharField(max_length=64, db_index=True)
    scopes: list[str] = fields.JSONField(default=list)
    status = fields.CharField(max_length=16, default="active")
    held = fields.BooleanField(default=False)
    # The version of the app's declared terms (apps.models.AppTerms) the member agreed to;
    # while the app's current version differs, the grant allows no reads.
    terms_version = fields.IntField(default=0)
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField(null=True)
    ended_at = fields.DatetimeField(null=True)

    class Meta:
        table = "consent_grant"
        # Foreign keys are indexed so that per-member work (cascades included) never scans
        # other members' rows; `expires_at` serves the hourly expiry (docs/operations.md).
        indexes = (("member_id", "status"), ("app_id",), ("expires_at",))


class GrantEvent(Model):
    """One change in a grant's life: created, narrowed, paused, resumed, expired, revoked.

    Also "agreed": the member agreed to the app's changed terms (`terms_version` says which).
    """

    id = fields.UUIDField(primary_key=True)
    grant: fields.ForeignKeyRelation[Grant] = fields.ForeignKeyField(
        "models.Grant", related_name="events", on_delete=fields.CASCADE
    )
    grant_id: uuid.UUID
    kind = fields.CharField(max_length=16)
    at = fields.DatetimeField()
    scopes: list[str] = fields.JSONField(default=list)
    reason = fields.CharField(max_length=32, null=True)
    terms_version = fields.IntField(null=True)

    class Meta:
        table = "grant_event"
        indexes = (("grant_id", "at"),)


class SharingPause(Model):
    """Present while a member has paused all sharing (one row per member)."""

    # A plain UUID key: tortoise's autodetector re-emits AlterModelOptions forever for a model
    # whose primary key is a OneToOneField.
    id = fields.UUIDField(primary_key=True)
    member: fields.OneToOneRelation[Member] = fields.OneToOneField(
        "models.Member", related_name="sharing_pause", on_delete=fields.CASCADE
    )
    member_id: uuid.UUID
    since = fields.DatetimeField()

    class Meta:
        table = "sharing_pause"


class AuthorizationCode(Model):
    """A one-time code (hash only), bound to client, redirect URI and PKCE challenge."""

    id = fields.UUIDField(primary_key=True)
    code_hash = fields.CharField(max_length=64, unique=True)
    grant: fields.ForeignKeyRelation[Grant] = fields.ForeignKeyField(
        "models.Grant", related_name="codes", on_delete=fields.CASCADE
    )
    grant_id: uuid.UUID
    client_id = fields.CharField(max_length=64)
    redirect_uri = fields.CharField(max_length=500)
    redirect_uri_given = fields.BooleanField(default=True)
    code_challenge = fields.CharField(max_length=128)
    scopes: list[str] = fields.JSONField(default=list)
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "authorization_code"
        indexes = (("grant_id",), ("expires_at",))


class OAuthToken(Model):
    """An access token and its refresh token (hashes only). Rotation makes a chain of rows
    sharing one `family_id` (one per authorization code), and reuse revokes the whole family."""

    id = fields.UUIDField(primary_key=True)
    access_hash = fields.CharField(max_length=64, unique=True)
    refresh_hash = fields.CharField(max_length=64, unique=True, null=True)
    grant: fields.ForeignKeyRelation[Grant] = fields.ForeignKeyField(
        "models.Grant", related_name="tokens", on_delete=fields.CASCADE
    )
    grant_id: uuid.UUID
    client_id = fields.CharField(max_length=64)
    family_id = fields.UUIDField(db_index=True)
    scopes: list[str] = fields.JSONField(default=list)
    created_at = fields.DatetimeField()
    access_expires_at = fields.DatetimeField()
    refresh_expires_at = fields.DatetimeField(null=True)
    refresh_used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "oauth_token"
        # The three housekeeping columns: each purge rule starts from one of them.
        indexes = (("grant_id",), ("revoked_at",), ("access_expires_at",), ("refresh_used_at",))


class PersonalToken(Model):
    """A member's own API token for their own data (hash only)."""

    id = fields.UUIDField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "models.Member", related_name="personal_tokens", on_delete=fields.CASCADE
    )
    member_id: uuid.UUID
    name = fields.CharField(max_length=100)
    token_hash = fields.CharField(max_length=64, unique=True)
    scopes: list[str] = fields.JSONField(default=list)
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "personal_token"
        indexes = (("member_id",),)


class AccessLogEntry(Model):
    """One allowed read of a member's data: by which app (grant) or personal token, which
    scope, which resource, when. Written in batches (see consent.accesslog)."""

    id = fields.UUIDField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "models.Member", related_name="access_log", on_delete=fields.CASCADE
    )
    member_id: uuid.UUID
    grant: fields.ForeignKeyNullableRelation[Grant] = fields.ForeignKeyField(
        "models.Grant", related_name="reads", null=True, on_delete=fields.SET_NULL
    )
    grant_id: uuid.UUID | None
    app_id = fields.UUIDField(null=True)
    app_name = fields.CharField(max_length=100)
    personal_token_id = fields.UUIDField(null=True)
    scope = fields.CharField(max_length=100)
    resource = fields.CharField(max_length=200)
    at = fields.DatetimeField()

    class Meta:
        table = "access_log"
        # `at` alone serves the retention purge (COOP_ACCESS_LOG_RETENTION_DAYS);
        # (grant_id, at) finds a grant's last read without reading its other rows.
        indexes = (("member_id", "at"), ("grant_id", "at"), ("at",))


class NoticeDelivery(Model):
    """A signed notice to one app and how its delivery went (abstract: the deletion notices'
    WebhookDelivery and the score-change notices share these fields and one delivery loop).

    `body` holds the exact bytes to sign only while the notice is pending.
    """

    id = fields.UUIDField(primary_key=True)
    app_id = fields.UUIDField()
    app_name = fields.CharField(max_length=100)
    status = fields.CharField(max_length=16, default="pending")
    attempts = fields.IntField(default=0)
    last_status = fields.IntField(null=True)
    last_error = fields.CharField(max_length=64, default="")
    next_attempt_at = fields.DatetimeField(null=True)
    delivered_at = fields.DatetimeField(null=True)
    body = fields.BinaryField(null=True)

    class Meta:
        abstract = True


class ScoreNotice(NoticeDelivery):
    """A signed "score changed" notice to an app holding a live grant, and how its delivery
    went (consent.notices queues it). Member deletion cascades through the grant."""

    grant: fields.ForeignKeyRelation[Grant] = fields.ForeignKeyField(
        "models.Grant", related_name="notices", on_delete=fields.CASCADE
    )
    grant_id: uuid.UUID
    scorer = fields.CharField(max_length=64)
    changed_at = fields.DatetimeField()

    class Meta:
        table = "score_notice"
        indexes = (("status", "next_attempt_at"), ("grant_id",))
