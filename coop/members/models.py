"""Member accounts and their server-side web sessions."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Member(Model):
    """A person who signed up. Email and handle are sealed, and login finds them by blind index."""

    id = fields.UUIDField(primary_key=True)
    email_index = fields.CharField(max_length=64, unique=True)
    email_sealed = fields.BinaryField()
    handle_sealed = fields.BinaryField()
    password_hash = fields.CharField(max_length=255)
    created_at = fields.DatetimeField()
    password_changed_at = fields.DatetimeField()

    class Meta:
        table = "member"


class WebSession(Model):
    """A logged-in browser. Only a hash of the cookie's token is stored."""

    id = fields.UUIDField(primary_key=True)
    token_hash = fields.CharField(max_length=64, unique=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "models.Member", related_name="sessions", on_delete=fields.CASCADE
    )
    created_at = fields.DatetimeField()
    last_seen_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    reauthenticated_at = fields.DatetimeField()
    device_sealed = fields.BinaryField(null=True)

    class Meta:
        table = "web_session"
        indexes = (("member_id",), ("expires_at",), ("last_seen_at",))


class LoginThrottle(Model):
    """Failed-login counters per key (a blind-indexed email or a client address), per window."""

    key = fields.CharField(max_length=80, primary_key=True)
    window_start = fields.DatetimeField()
    failures = fields.IntField(default=0)

    class Meta:
        table = "login_throttle"
        indexes = (("window_start",),)
