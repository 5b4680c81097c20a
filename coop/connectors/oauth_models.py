"""State of coop's OAuth 2 *client* flows towards members' upstream accounts."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from coop.members.models import Member


class MastodonAppRegistration(Model):
    """coop's app on one Mastodon instance (POST /api/v1/apps), reused on later connects.

    Kept per member and instance: the client secret is sealed under the member's key like
    every other credential, and erasure removes it with the member. The row id is the
    callback key in the redirect URI, so each instance gets its own redirect URI.
    """

    id = fields.UUIDField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "models.Member", related_name="mastodon_apps", on_delete=fields.CASCADE
    )
    instance_index = fields.CharField(max_length=64, unique=True)
    sealed = fields.BinaryField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "mastodon_app_registration"
        indexes = (("member_id",),)


class OAuthFlow(Model):
    """One pending authorization: single use, ten minutes, bound to the browser session.

    Only a hash of `state` is stored. The PKCE verifier, the instance and the redirect URI
    are sealed under the member's key.
    """

    id = fields.UUIDField(primary_key=True)
    state_hash = fields.CharField(max_length=64, unique=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "models.Member", related_name="oauth_flows", on_delete=fields.CASCADE
    )
    session_id = fields.UUIDField()
    connector = fields.CharField(max_length=64)
    callback_key = fields.CharField(max_length=64)
    connection_id = fields.UUIDField(null=True)
    sealed = fields.BinaryField()
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()

    class Meta:
        table = "oauth_client_flow"
        indexes = (("member_id", "created_at"), ("expires_at",))
