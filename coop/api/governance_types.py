"""GraphQL types of the cooperative's votes: proposals, tallies, rules, the caller's vote."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry

from coop.api import ids
from coop.api.backend import ProposalEntry


@strawberry.enum(description="A member's vote.")
class VoteChoice(Enum):
    YES = "yes"
    NO = "no"
    ABSTAIN = "abstain"


@strawberry.enum(description="What a proposal asks the members.")
class ProposalKind(Enum):
    INSTALL = "install"
    UPGRADE = "upgrade"
    RETIRE = "retire"


@strawberry.enum(description="Whether a proposal still takes votes.")
class ProposalState(Enum):
    OPEN = "open"
    CLOSED = "closed"


@strawberry.enum(description="How a closed proposal ended.")
class ProposalOutcome(Enum):
    APPROVED = "approved"
    REJECTED = "rejected"
    NO_QUORUM = "no_quorum"


@strawberry.type(description="The rules a proposal is decided by, fixed when it opened.")
class VotingRules:
    quorum_percent: int = strawberry.field(
        description="Share of the roll that must vote (abstaining counts), in percent."
    )
    majority_percent: int = strawberry.field(
        description="Approved when yes is more than this share of the yes and no votes."
    )
    voting_hours: int = strawberry.field(description="How long the vote is open.")


@strawberry.type(description="The count of votes (stored as totals when the vote closed).")
class Tally:
    yes: int = strawberry.field(description="Votes for.")
    no: int = strawberry.field(description="Votes against.")
    abstain: int = strawberry.field(description="Abstentions.")
    eligible: int = strawberry.field(description="Members on the proposal's roll.")


@strawberry.type(description="What an upgrade changes, against the version in use.")
class ProposalChanges:
    from_version: str = strawberry.field(description="The version in use.")
    reads_more: list[str] = strawberry.field(description="Kinds of data it reads in addition.")
    reads_less: list[str] = strawberry.field(description="Kinds of data it no longer reads.")
    text: str = strawberry.field(
        description="`added` if it now reads the text of posts, `removed` if no longer, or ``."
    )


@strawberry.type(description="A question put to the members: offer or retire a scorer.")
class Proposal:
    id: strawberry.ID = strawberry.field(description="Global id (use it in `castVote`).")
    kind: ProposalKind = strawberry.field(description="Install, upgrade or retire.")
    scorer: str = strawberry.field(description="The scorer's name.")
    version: str = strawberry.field(description="The version voted on.")
    previous_version: str | None = strawberry.field(description="For an upgrade: in use now.")
    title: str = strawberry.field(description="The scorer's title.")
    description: str = strawberry.field(description="What the scorer measures.")
    homepage: str | None = strawberry.field(description="Where to read about it.")
    reads: list[str] = strawberry.field(description="Kinds of data it reads.")
    reads_text: bool = strawberry.field(description="Whether it reads the text of posts.")
    distribution_hash: str = strawberry.field(
        description="sha256 content hash of the installed distribution voted on."
    )
    changes: ProposalChanges | None = strawberry.field(description="For an upgrade.")
    opened_at: datetime = strawberry.field(description="When voting opened (UTC).")
    closes_at: datetime = strawberry.field(description="When voting closes (UTC).")
    closed_at: datetime | None = strawberry.field(description="When it was closed (UTC).")
    state: ProposalState = strawberry.field(description="Open or closed.")
    outcome: ProposalOutcome | None = strawberry.field(description="Once closed.")
    rules: VotingRules = strawberry.field(description="The rules in force for this vote.")
    tally: Tally = strawberry.field(description="The count so far, or the final one.")
    can_vote: bool = strawberry.field(
        description="Whether you are on this proposal's roll (a member when it opened)."
    )
    my_vote: VoteChoice | None = strawberry.field(description="Your own vote, if you voted.")

    @classmethod
    def of(cls, entry: ProposalEntry) -> Proposal:
        p, changes = entry.proposal, entry.proposal.changes
        return cls(
            id=strawberry.ID(ids.encode("Proposal", str(p.id))),
            kind=ProposalKind(p.kind),
            scorer=p.scorer,
            version=p.version,
            previous_version=p.previous_version or None,
            title=p.title,
            description=p.description,
            homepage=p.homepage or None,
            reads=list(p.reads),
            reads_text=p.needs_text,
            distribution_hash=p.distribution_hash,
            changes=ProposalChanges(
                from_version=str(changes["from_version"]),
                reads_more=list(changes.get("reads_more", [])),
                reads_less=list(changes.get("reads_less", [])),
                text=str(changes.get("text", "")),
            )
            if changes
            else None,
            opened_at=p.opened_at,
            closes_at=p.closes_at,
            closed_at=p.closed_at,
            state=ProposalState(p.state),
            outcome=ProposalOutcome(p.outcome) if p.outcome else None,
            rules=VotingRules(
                quorum_percent=p.rules.quorum,
                majority_percent=p.rules.majority,
                voting_hours=p.rules.voting_hours,
            ),
            tally=Tally(
                yes=p.tally.yes, no=p.tally.no, abstain=p.tally.abstain, eligible=p.tally.eligible
            ),
            can_vote=entry.eligible,
            my_vote=VoteChoice(entry.my_vote) if entry.my_vote else None,
        )


@strawberry.type(description="Your vote is recorded (a second vote replaces the first).")
class CastVoteSuccess:
    proposal: Proposal = strawberry.field(description="The proposal, with your vote and tally.")


@strawberry.enum(description="Why `castVote` failed (nothing was recorded).")
class VoteErrorCode(Enum):
    NOT_FOUND = "proposal_not_found"
    VOTING_CLOSED = "voting_closed"
    NOT_ELIGIBLE = "not_eligible"
    GOVERNANCE_OFF = "governance_off"


@strawberry.type(description="A vote was not recorded.")
class VoteError:
    code: VoteErrorCode = strawberry.field(description="Stable reason.")
    message: str = strawberry.field(description="What happened, in plain words.")


CastVoteResult = Annotated[
    CastVoteSuccess | VoteError,
    strawberry.union("CastVoteResult", description="What `castVote` returns."),
]
