"""Scorer consents (with their event history) and stored scores with sealed explanations."""

from __future__ import annotations

import uuid

from tortoise import fields
from tortoise.models import Model

from coop.members.models import Member


class ScorerConsent(Model):
    """Whether a member lets one scorer run on their data. Every change is a ScorerConsentEvent."""

    id = fields.UUIDField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "models.Member", related_name="scorer_consents", on_delete=fields.CASCADE
    )
    member_id: uuid.UUID
    scorer = fields.CharField(max_length=40)
    enabled = fields.BooleanField(default=False)
    updated_at = fields.DatetimeField()
    last_run_at = fields.DatetimeField(null=True)
    last_status = fields.CharField(max_length=32, default="")

    class Meta:
        table = "scorer_consent"
        unique_together = (("member_id", "scorer"),)


class ScorerConsentEvent(Model):
    """One enable or disable, with when and which scorer version the member saw."""

    id = fields.UUIDField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "models.Member", related_name="scorer_consent_events", on_delete=fields.CASCADE
    )
    member_id: uuid.UUID
    scorer = fields.CharField(max_length=40)
    action = fields.CharField(max_length=16)
    scorer_version = fields.CharField(max_length=64, default="")
    reads = fields.CharField(max_length=200, default="")
    at = fields.DatetimeField()

    class Meta:
        table = "scorer_consent_event"
        indexes = (("member_id", "scorer"),)


class Score(Model):
    """One computed score. The explanation and the change attribution are sealed."""

    id = fields.UUIDField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "models.Member", related_name="scores", on_delete=fields.CASCADE
    )
    member_id: uuid.UUID
    scorer = fields.CharField(max_length=40)
    scorer_version = fields.CharField(max_length=64)
    value = fields.FloatField()
    inputs_digest = fields.CharField(max_length=64)
    computed_at = fields.DatetimeField()
    explanation_sealed = fields.BinaryField()
    change_sealed = fields.BinaryField(null=True)

    class Meta:
        table = "score"
        indexes = (("member_id", "scorer", "computed_at"),)
