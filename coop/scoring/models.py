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
    # What the member agreed to: the version and what it reads ("" before coop recorded it).
    accepted_version = fields.CharField(max_length=64, default="")
    accepted_reads = fields.CharField(max_length=200, default="")
    accepted_text = fields.BooleanField(default=False)
    # Why the latest score is not being kept current ("" when it is): see coop.scoring.versions.
    stale_reason = fields.CharField(max_length=300, default="")
    # A new version whose preview the member answered with "Keep current score".
    kept_version = fields.CharField(max_length=64, default="")

    class Meta:
        table = "scorer_consent"
        unique_together = (("member_id", "scorer"),)


class ScorerConsentEvent(Model):
    """One enable, disable, new-version question or acceptance, with when and which scorer
    version (and reads) the member saw."""

    id = fields.UUIDField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "models.Member", related_name="scorer_consent_events", on_delete=fields.CASCADE
    )
    member_id: uuid.UUID
    scorer = fields.CharField(max_length=40)
    action = fields.CharField(max_length=16)
    scorer_version = fields.CharField(max_length=64, default="")
    reads = fields.CharField(max_length=200, default="")
    note = fields.CharField(max_length=300, default="")  # e.g. what a new version reads more
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
    # The exact inputs (coop.scoring.inputs), compressed and sealed: what the change of the
    # next score is decomposed from, and what a proof bundle publishes. Null on older rows.
    inputs_sealed = fields.BinaryField(null=True)

    class Meta:
        table = "score"
        indexes = (("member_id", "scorer", "computed_at"),)


class ScorePreview(Model):
    """What a new scorer version would give a member, before they accept it. Never read by
    apps (they read only `score`). The change is sealed like a score's."""

    id = fields.UUIDField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "models.Member", related_name="score_previews", on_delete=fields.CASCADE
    )
    member_id: uuid.UUID
    scorer = fields.CharField(max_length=40)
    scorer_version = fields.CharField(max_length=64)
    value = fields.FloatField()
    computed_at = fields.DatetimeField()
    change_sealed = fields.BinaryField(null=True)

    class Meta:
        table = "score_preview"
        unique_together = (("member_id", "scorer"),)


class ScorerDrift(Model):
    """Same inputs, same version, another value: how often a scorer version did it (no member
    data: the operator's `coop plugins list` shows it)."""

    id = fields.UUIDField(primary_key=True)
    scorer = fields.CharField(max_length=40)
    scorer_version = fields.CharField(max_length=64)
    seen = fields.IntField(default=0)
    last_seen_at = fields.DatetimeField()

    class Meta:
        table = "scorer_drift"
        unique_together = (("scorer", "scorer_version"),)


class ScorerRunCounts(Model):
    """How one scorer's runs went in one hour, with no member data. The row of `kind` ""
    counts every run, its failures and how the last one failed, and the row of kind K counts
    the runs that received records of kind K. `coop plugins list` reads the last 24 hours.

    Each database session counts in rows of its own (`shard`: PostgreSQL's backend pid, 0 on
    SQLite), summed when read: workers never wait on one another's row. (It replaced
    `scorer_runs`, one row per scorer, hour and kind that every worker updated.)"""

    id = fields.UUIDField(primary_key=True)
    scorer = fields.CharField(max_length=40)
    hour = fields.DatetimeField()
    kind = fields.CharField(max_length=40, default="")
    shard = fields.IntField(default=0)
    runs = fields.IntField(default=0)
    failures = fields.IntField(default=0)
    last_failure_at = fields.DatetimeField(null=True)
    # The error code, and where the plugin failed (exception type, file, line, function):
    # never the exception's message, which may quote member data.
    last_failure = fields.CharField(max_length=300, default="")
    last_failure_version = fields.CharField(max_length=64, default="")

    class Meta:
        table = "scorer_run_counts"
        unique_together = (("scorer", "hour", "kind", "shard"),)
        indexes = (("hour",),)
