"""Proposals, their eligibility rolls and ballots, and the scorer versions the cooperative
approved. No row here names a member in clear (docs/governance.md, docs/security.md)."""

from __future__ import annotations

import uuid
from typing import Any

from tortoise import fields
from tortoise.models import Model

from coop.members.models import Member


class Proposal(Model):
    """One question put to the members: offer a scorer (version), or retire a scorer."""

    id = fields.UUIDField(primary_key=True)
    kind = fields.CharField(max_length=16)  # install | upgrade | retire
    scorer = fields.CharField(max_length=40)
    version = fields.CharField(max_length=64)
    previous_version = fields.CharField(max_length=64, default="")
    # What the members are shown, as it was when the proposal opened.
    title = fields.CharField(max_length=200, default="")
    description = fields.TextField(default="")
    homepage = fields.CharField(max_length=500, default="")
    reads = fields.CharField(max_length=200, default="")
    needs_text = fields.BooleanField(default=False)
    distribution_hash = fields.CharField(max_length=64, default="")
    changes: dict[str, Any] = fields.JSONField(default=dict)
    opened_by = fields.CharField(max_length=16)  # operator | discovery
    opened_at = fields.DatetimeField()
    closes_at = fields.DatetimeField()
    # The rules in force for this vote (quorum, majority, period), fixed when it opened.
    rules: dict[str, int] = fields.JSONField(default=dict)
    state = fields.CharField(max_length=8, default="open")  # open | closed
    closed_at = fields.DatetimeField(null=True)
    outcome = fields.CharField(max_length=16, default="")  # approved | rejected | no_quorum
    # The tally stored as totals at close: erasing a member later never changes it.
    yes = fields.IntField(default=0)
    no = fields.IntField(default=0)
    abstain = fields.IntField(default=0)
    eligible = fields.IntField(default=0)
    # Aggregate preview statistics (coop.governance.statistics.summarise): never a member's
    # own value; empty until computed.
    statistics: dict[str, Any] = fields.JSONField(default=dict)

    class Meta:
        table = "governance_proposal"
        indexes = (("scorer", "version"), ("state", "closes_at"))


class RollEntry(Model):
    """A member on a proposal's eligibility roll: a keyed hash of their id (no member link in
    clear), and, once they voted, their ballot's id sealed under their own data key."""

    id = fields.UUIDField(primary_key=True)
    proposal: fields.ForeignKeyRelation[Proposal] = fields.ForeignKeyField(
        "models.Proposal", related_name="roll", on_delete=fields.CASCADE
    )
    proposal_id: uuid.UUID
    voter_key = fields.CharField(max_length=64)
    ballot_sealed = fields.BinaryField(null=True)

    class Meta:
        table = "governance_roll"
        unique_together = (("proposal_id", "voter_key"),)


class Ballot(Model):
    """One vote: a random id and the choice. Nothing here points at a member, and there is
    no time column (a time would let anyone match a ballot with a login)."""

    id = fields.UUIDField(primary_key=True)
    proposal: fields.ForeignKeyRelation[Proposal] = fields.ForeignKeyField(
        "models.Proposal", related_name="ballots", on_delete=fields.CASCADE
    )
    proposal_id: uuid.UUID
    choice = fields.CharField(max_length=8)  # yes | no | abstain

    class Meta:
        table = "governance_ballot"
        indexes = (("proposal_id", "choice"),)


class Approval(Model):
    """A scorer version the cooperative offers: approved by a vote, or already installed
    when governance was switched on (`source` = baseline). `retired_at` ends it."""

    id = fields.UUIDField(primary_key=True)
    scorer = fields.CharField(max_length=40)
    version = fields.CharField(max_length=64)
    source = fields.CharField(max_length=16)  # vote | baseline
    # What the approved version reads: the next upgrade's proposal shows the difference.
    reads = fields.CharField(max_length=200, default="")
    needs_text = fields.BooleanField(default=False)
    proposal_id = fields.UUIDField(null=True)
    approved_at = fields.DatetimeField()
    retired_at = fields.DatetimeField(null=True)

    class Meta:
        table = "governance_approval"
        unique_together = (("scorer", "version"),)


class GovernanceState(Model):
    """One row: when governance was first switched on (the baseline was recorded then)."""

    id = fields.IntField(primary_key=True)
    baseline_at = fields.DatetimeField()

    class Meta:
        table = "governance_state"


class StatisticsConsent(Model):
    """A member's choice to let proposed scorers run on their data, in the sandbox, only to
    count in the aggregate statistics shown on proposals. No row: not shared."""

    id = fields.UUIDField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "models.Member", related_name="statistics_consents", on_delete=fields.CASCADE
    )
    member_id: uuid.UUID
    shared_at = fields.DatetimeField()

    class Meta:
        table = "governance_statistics_consent"
        unique_together = (("member_id",),)
