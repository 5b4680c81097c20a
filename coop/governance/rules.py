"""The cooperative's voting rules and how a tally becomes an outcome (pure functions)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from coop.config import Settings

YES, NO, ABSTAIN = "yes", "no", "abstain"
CHOICES = (YES, NO, ABSTAIN)
APPROVED, REJECTED, NO_QUORUM = "approved", "rejected", "no_quorum"


@dataclass(frozen=True)
class Rules:
    """Quorum: the share (percent) of the roll that must vote (abstaining counts). Majority:
    approved when yes is MORE than this percent of the yes and no votes."""

    quorum: int
    majority: int
    voting_hours: int

    @property
    def period(self) -> timedelta:
        return timedelta(hours=self.voting_hours)

    def to_json(self) -> dict[str, int]:
        return {"quorum": self.quorum, "majority": self.majority, "voting_hours": self.voting_hours}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Rules:
        return cls(int(data["quorum"]), int(data["majority"]), int(data["voting_hours"]))

    @classmethod
    def defaults(cls) -> Rules:
        return cls.from_settings(Settings())

    @classmethod
    def from_settings(cls, settings: Settings) -> Rules:
        return cls(
            settings.governance_quorum,
            settings.governance_majority,
            settings.governance_voting_hours,
        )


@dataclass(frozen=True)
class Tally:
    yes: int
    no: int
    abstain: int
    eligible: int

    @property
    def turnout(self) -> int:
        return self.yes + self.no + self.abstain


def quorum_met(tally: Tally, rules: Rules) -> bool:
    return tally.eligible > 0 and tally.turnout * 100 >= rules.quorum * tally.eligible


def outcome(tally: Tally, rules: Rules) -> str:
    """approved | rejected | no_quorum (which, like rejected, changes nothing)."""
    if not quorum_met(tally, rules):
        return NO_QUORUM
    decided = tally.yes + tally.no
    if decided and tally.yes * 100 > rules.majority * decided:
        return APPROVED
    return REJECTED
