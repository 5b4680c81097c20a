"""Governance use cases: open a proposal (its roll fixed then), cast or change a vote, close
it (the tally stored as totals and the outcome applied to the approvals), and say which
installed scorer versions the cooperative offers.

Vote privacy (docs/security.md#votes): the roll holds a keyed hash of each eligible member's
id per proposal; a ballot holds only a random id and the choice; the link from a member to
their ballot is the ballot id sealed under that member's own data key, on their roll entry.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from coop.errors import (
    InvalidChoiceError,
    KeyMissingError,
    NotEligibleError,
    ProposalExistsError,
    ProposalNotFoundError,
    ScorerNotApprovedError,
    VotingClosedError,
    VotingOpenError,
)
from coop.governance import rules as voting
from coop.governance.models import Approval, Ballot, GovernanceState, Proposal, RollEntry
from coop.governance.rules import Rules, Tally
from coop.types import utcnow
from coop.vault import MemberCipher, Vault
from coop.vault.models import MemberKey

INSTALL, UPGRADE, RETIRE = "install", "upgrade", "retire"
KINDS = (INSTALL, UPGRADE, RETIRE)
OPEN, CLOSED = "open", "closed"
OPERATOR, DISCOVERY = "operator", "discovery"
ROLL_TABLE = "governance_roll"


class ScorerLike(Protocol):
    """What governance needs of an installed scorer (coop.scoring.validate.ScorerMeta)."""

    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def homepage(self) -> str: ...
    @property
    def reads(self) -> tuple[str, ...]: ...
    @property
    def needs_text(self) -> bool: ...


M = TypeVar("M", bound=ScorerLike)


@dataclass(frozen=True)
class ProposalView:
    id: uuid.UUID
    kind: str
    scorer: str
    version: str
    previous_version: str
    title: str
    description: str
    homepage: str
    reads: tuple[str, ...]
    needs_text: bool
    distribution_hash: str
    changes: dict[str, Any]
    opened_by: str
    opened_at: datetime
    closes_at: datetime
    rules: Rules
    state: str
    closed_at: datetime | None
    outcome: str
    tally: Tally
    statistics: dict[str, Any] = field(default_factory=dict)

    @property
    def is_open(self) -> bool:
        return self.state == OPEN


def _view(row: Proposal, tally: Tally) -> ProposalView:
    return ProposalView(
        id=row.id,
        kind=row.kind,
        scorer=row.scorer,
        version=row.version,
        previous_version=row.previous_version,
        title=row.title,
        description=row.description,
        homepage=row.homepage,
        reads=tuple(k for k in row.reads.split(",") if k),
        needs_text=row.needs_text,
        distribution_hash=row.distribution_hash,
        changes=dict(row.changes or {}),
        opened_by=row.opened_by,
        opened_at=row.opened_at,
        closes_at=row.closes_at,
        rules=Rules.from_json(row.rules),
        state=row.state,
        closed_at=row.closed_at,
        outcome=row.outcome,
        tally=tally,
        statistics=dict(row.statistics or {}),
    )


async def _live_tally(proposal_id: uuid.UUID) -> Tally:
    counts = {c: 0 for c in voting.CHOICES}
    for choice in await Ballot.filter(proposal_id=proposal_id).values_list("choice", flat=True):
        counts[str(choice)] = counts.get(str(choice), 0) + 1
    eligible = await RollEntry.filter(proposal_id=proposal_id).count()
    return Tally(counts[voting.YES], counts[voting.NO], counts[voting.ABSTAIN], eligible)


async def _tally_of(row: Proposal) -> Tally:
    if row.state == CLOSED:  # the totals stored at close: erasure never changes them
        return Tally(row.yes, row.no, row.abstain, row.eligible)
    return await _live_tally(row.id)


async def get_proposal(*, proposal_id: uuid.UUID) -> ProposalView:
    row = await Proposal.get_or_none(id=proposal_id)
    if row is None:
        raise ProposalNotFoundError()
    return _view(row, await _tally_of(row))


async def list_proposals(*, state: str | None = None) -> list[ProposalView]:
    """Open ones first (closing soonest first), then closed ones, newest first."""
    query = Proposal.all() if state is None else Proposal.filter(state=state)
    rows = await query
    current = sorted((r for r in rows if r.state == OPEN), key=lambda r: r.closes_at)
    past = sorted((r for r in rows if r.state != OPEN), key=lambda r: r.opened_at, reverse=True)
    return [_view(row, await _tally_of(row)) for row in [*current, *past]]


# -- what the cooperative offers ----------------------------------------------------------


@dataclass(frozen=True)
class Standing:
    """Where one installed scorer version stands: approved (offered), or why not."""

    approved: bool
    reason: str = ""  # pending | rejected | retired | unapproved
    proposal_id: uuid.UUID | None = None


async def standing(*, scorer: str, version: str) -> Standing:
    approval = await Approval.get_or_none(scorer=scorer, version=version)
    if approval is not None and approval.retired_at is None:
        return Standing(True)
    if approval is not None:
        return Standing(False, "retired", approval.proposal_id)
    latest = (
        await Proposal.filter(scorer=scorer, version=version, kind__in=[INSTALL, UPGRADE])
        .order_by("-opened_at")
        .first()
    )
    if latest is None:
        return Standing(False, "unapproved")
    return Standing(False, "pending" if latest.state == OPEN else "rejected", latest.id)


async def never_proposed(*, scorer: str, version: str) -> bool:
    """No approval and no proposal (in any state) for this scorer version yet."""
    if await Approval.exists(scorer=scorer, version=version):
        return False
    return not await Proposal.exists(scorer=scorer, version=version, kind__in=[INSTALL, UPGRADE])


async def offered(metas: Iterable[M]) -> list[M]:
    """The installed scorers members may be offered: those whose version is approved."""
    active = {
        (str(s), str(v))
        for s, v in await Approval.filter(retired_at=None).values_list("scorer", "version")
    }
    return [meta for meta in metas if (meta.name, meta.version) in active]


async def require_approved(meta: ScorerLike) -> None:
    """ScorerNotApprovedError unless the members approved this scorer version."""
    if not (await standing(scorer=meta.name, version=meta.version)).approved:
        raise ScorerNotApprovedError()


async def record_baseline(*, metas: Sequence[ScorerLike], now: datetime | None = None) -> bool:
    """The first time governance is on: every installed scorer version counts as approved,
    recorded with source `baseline` (docs/governance.md). False if it was recorded before."""
    now = now or utcnow()
    if await GovernanceState.exists(id=1):
        return False
    try:
        async with in_transaction():
            await GovernanceState.create(id=1, baseline_at=now)
            for meta in metas:
                await _approve(meta, source="baseline", now=now)
    except IntegrityError:  # another process recorded it first
        return False
    return True


async def _approve(
    meta: ScorerLike, *, source: str, now: datetime, proposal_id: uuid.UUID | None = None
) -> None:
    existing = await Approval.get_or_none(scorer=meta.name, version=meta.version)
    if existing is None:
        await Approval.create(
            id=uuid.uuid4(),
            scorer=meta.name,
            version=meta.version,
            source=source,
            reads=",".join(meta.reads),
            needs_text=meta.needs_text,
            proposal_id=proposal_id,
            approved_at=now,
        )
        return
    existing.source, existing.proposal_id = source, proposal_id
    existing.approved_at, existing.retired_at = now, None
    await existing.save(update_fields=["source", "proposal_id", "approved_at", "retired_at"])


@dataclass(frozen=True)
class _Subject:
    """A proposal's scorer version as it was shown (to record its approval)."""

    name: str
    version: str
    title: str
    description: str
    homepage: str
    reads: tuple[str, ...]
    needs_text: bool

    @classmethod
    def of(cls, row: Proposal) -> _Subject:
        reads = tuple(k for k in row.reads.split(",") if k)
        return cls(
            row.scorer, row.version, row.title, row.description, row.homepage, reads, row.needs_text
        )


# -- opening ------------------------------------------------------------------------------


def _changes(meta: ScorerLike, before: Approval) -> dict[str, Any]:
    old = [k for k in before.reads.split(",") if k]
    return {
        "from_version": before.version,
        "reads_more": [k for k in meta.reads if k not in old],
        "reads_less": [k for k in old if k not in meta.reads],
        "text": "added"
        if meta.needs_text and not before.needs_text
        else ("removed" if before.needs_text and not meta.needs_text else ""),
    }


async def _in_use(scorer: str) -> Approval | None:
    return await Approval.filter(scorer=scorer, retired_at=None).order_by("-approved_at").first()


async def open_proposal(
    *,
    vault: Vault,
    meta: ScorerLike,
    rules: Rules,
    retire: bool = False,
    distribution_hash: str = "",
    opened_by: str = OPERATOR,
    now: datetime | None = None,
) -> ProposalView:
    """Put an installed scorer version (or the retirement of a scorer) to the members. The
    roll is every member who holds a data key now; it never grows."""
    now = now or utcnow()
    async with in_transaction():
        in_use = await _in_use(meta.name)
        kind = RETIRE if retire else (UPGRADE if in_use is not None else INSTALL)
        await _check_can_open(meta, kind, in_use)
        row = await Proposal.create(
            id=uuid.uuid4(),
            kind=kind,
            scorer=meta.name,
            version=in_use.version if (retire and in_use is not None) else meta.version,
            previous_version=in_use.version if (in_use and kind == UPGRADE) else "",
            title=meta.title[:200],
            description=meta.description,
            homepage=meta.homepage[:500],
            reads=",".join(meta.reads),
            needs_text=meta.needs_text,
            distribution_hash=distribution_hash,
            changes=_changes(meta, in_use) if (in_use and kind == UPGRADE) else {},
            opened_by=opened_by,
            opened_at=now,
            closes_at=now + rules.period,
            rules=rules.to_json(),
        )
        await _fill_roll(vault, row.id)
    return await get_proposal(proposal_id=row.id)


async def _check_can_open(meta: ScorerLike, kind: str, in_use: Approval | None) -> None:
    if kind == RETIRE:
        if in_use is None:
            raise ProposalExistsError("This scorer is not offered, so there is nothing to retire.")
        if await Proposal.exists(scorer=meta.name, kind=RETIRE, state=OPEN):
            raise ProposalExistsError("A vote on retiring this scorer is already open.")
        return
    if (await standing(scorer=meta.name, version=meta.version)).approved:
        raise ProposalExistsError(f"{meta.name} {meta.version} is already approved.")
    if await Proposal.exists(scorer=meta.name, version=meta.version, state=OPEN):
        raise ProposalExistsError(f"A vote on {meta.name} {meta.version} is already open.")


def voter_key(vault: Vault, proposal_id: uuid.UUID, member_id: uuid.UUID) -> str:
    """The member's place on one proposal's roll: keyed per proposal, so rolls of different
    proposals cannot be joined without the server's key."""
    return vault.blind_index(f"{proposal_id}:{member_id}", purpose="governance-roll")


async def _fill_roll(vault: Vault, proposal_id: uuid.UUID) -> None:
    members = [uuid.UUID(str(m)) for m in await MemberKey.all().values_list("member_id", flat=True)]
    random.SystemRandom().shuffle(members)  # the roll's row order says nothing
    await RollEntry.bulk_create(
        [
            RollEntry(
                id=uuid.uuid4(), proposal_id=proposal_id, voter_key=voter_key(vault, proposal_id, m)
            )
            for m in members
        ]
    )


# -- voting -------------------------------------------------------------------------------


def _seal_link(cipher: MemberCipher, entry: RollEntry, ballot_id: uuid.UUID) -> bytes:
    return cipher.seal(ballot_id.bytes, table=ROLL_TABLE, column="ballot_sealed", row=entry.id)


def _open_link(cipher: MemberCipher, entry: RollEntry) -> uuid.UUID | None:
    if entry.ballot_sealed is None:
        return None
    raw = cipher.open(entry.ballot_sealed, table=ROLL_TABLE, column="ballot_sealed", row=entry.id)
    return uuid.UUID(bytes=raw)


async def _locked_open(proposal_id: uuid.UUID, now: datetime) -> Proposal:
    """The proposal, locked for this transaction (PostgreSQL; SQLite has one writer), if it
    still takes votes. A close takes the same lock: a vote lands wholly before it or fails."""
    row = await Proposal.filter(id=proposal_id).select_for_update().first()
    if row is None:
        raise ProposalNotFoundError()
    if row.state != OPEN or now >= row.closes_at:
        raise VotingClosedError()
    return row


async def cast_vote(
    *,
    vault: Vault,
    member_id: uuid.UUID,
    proposal_id: uuid.UUID,
    choice: str,
    now: datetime | None = None,
) -> str:
    """Cast the member's vote, or change it (a second vote replaces the first, never adds).
    Returns the choice now recorded."""
    if choice not in voting.CHOICES:
        raise InvalidChoiceError()
    now = now or utcnow()
    cipher = await vault.cipher_for(member_id)
    async with in_transaction():
        await _locked_open(proposal_id, now)
        entry = await RollEntry.get_or_none(
            proposal_id=proposal_id, voter_key=voter_key(vault, proposal_id, member_id)
        )
        if entry is None:
            raise NotEligibleError()
        ballot_id = _open_link(cipher, entry)
        if ballot_id is not None and await Ballot.filter(id=ballot_id).update(choice=choice):
            return choice
        ballot_id = uuid.uuid4()
        await Ballot.create(id=ballot_id, proposal_id=proposal_id, choice=choice)
        entry.ballot_sealed = _seal_link(cipher, entry, ballot_id)
        await entry.save(update_fields=["ballot_sealed"])
    return choice


@dataclass(frozen=True)
class MyVote:
    eligible: bool
    choice: str | None = None


async def my_votes(
    *, vault: Vault, member_id: uuid.UUID, proposal_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, MyVote]:
    """The member's own vote on each proposal (opened with their key; nobody else's)."""
    ids = list(proposal_ids)
    keys = {voter_key(vault, p, member_id): p for p in ids}
    found = {p: MyVote(False) for p in ids}
    entries = await RollEntry.filter(voter_key__in=list(keys)) if keys else []
    if not entries:
        return found
    try:
        cipher = await vault.cipher_for(member_id)
    except KeyMissingError:
        return found
    links = {
        e.proposal_id: _open_link(cipher, e)
        for e in entries
        if keys.get(e.voter_key) == e.proposal_id
    }
    ballots = {
        b.id: b.choice
        for b in await Ballot.filter(id__in=[b for b in links.values() if b is not None])
    }
    for proposal_id, ballot_id in links.items():
        found[proposal_id] = MyVote(True, ballots.get(ballot_id) if ballot_id else None)
    return found


@dataclass(frozen=True)
class MemberProposal:
    """A proposal as one member sees it: the proposal, and whether and how they voted."""

    proposal: ProposalView
    vote: MyVote


async def list_for_member(
    *, vault: Vault, member_id: uuid.UUID, state: str | None = None
) -> list[MemberProposal]:
    found = await list_proposals(state=state)
    mine = await my_votes(vault=vault, member_id=member_id, proposal_ids=[p.id for p in found])
    return [MemberProposal(p, mine[p.id]) for p in found]


async def vote_for_member(
    *, vault: Vault, member_id: uuid.UUID, proposal_id: uuid.UUID, choice: str
) -> MemberProposal:
    """Cast the vote, then the proposal as the member now sees it."""
    await cast_vote(vault=vault, member_id=member_id, proposal_id=proposal_id, choice=choice)
    proposal = await get_proposal(proposal_id=proposal_id)
    mine = await my_votes(vault=vault, member_id=member_id, proposal_ids=[proposal_id])
    return MemberProposal(proposal, mine[proposal_id])


async def list_own_votes(*, vault: Vault, member_id: uuid.UUID) -> list[MemberProposal]:
    """The proposals the member voted on, with their vote (for the export)."""
    found = await list_for_member(vault=vault, member_id=member_id)
    return [m for m in found if m.vote.choice is not None]


# -- closing ------------------------------------------------------------------------------


async def close_proposal(*, proposal_id: uuid.UUID, now: datetime | None = None) -> ProposalView:
    """Close a proposal whose voting period is over: count, store the totals, decide by the
    rules recorded at opening, and apply an approval or a retirement."""
    now = now or utcnow()
    async with in_transaction():
        row = await Proposal.filter(id=proposal_id).select_for_update().first()
        if row is None:
            raise ProposalNotFoundError()
        if row.state != OPEN:
            raise VotingClosedError("This proposal is already closed.")
        if now < row.closes_at:
            raise VotingOpenError(
                f"Voting on this proposal is open until {row.closes_at.isoformat()}."
            )
        tally = await _live_tally(row.id)
        result = voting.outcome(tally, Rules.from_json(row.rules))
        row.state, row.closed_at, row.outcome = CLOSED, now, result
        row.yes, row.no, row.abstain, row.eligible = (
            tally.yes,
            tally.no,
            tally.abstain,
            tally.eligible,
        )
        await row.save(
            update_fields=["state", "closed_at", "outcome", "yes", "no", "abstain", "eligible"]
        )
        if result == voting.APPROVED:
            await _apply(row, now)
    return _view(row, tally)


async def _apply(row: Proposal, now: datetime) -> None:
    if row.kind == RETIRE:
        await Approval.filter(scorer=row.scorer, retired_at=None).update(retired_at=now)
    else:
        await _approve(_Subject.of(row), source="vote", now=now, proposal_id=row.id)


async def due_proposals(*, now: datetime | None = None) -> list[uuid.UUID]:
    now = now or utcnow()
    ids = await Proposal.filter(state=OPEN, closes_at__lte=now).values_list("id", flat=True)
    return [uuid.UUID(str(i)) for i in ids]


async def open_count() -> int:
    return await Proposal.filter(state=OPEN).count()


# -- members leaving ----------------------------------------------------------------------


async def count_votes(*, vault: Vault, member_id: uuid.UUID) -> int:
    """How many votes the member has cast (for the erasure receipt)."""
    proposals = [uuid.UUID(str(p)) for p in await Proposal.all().values_list("id", flat=True)]
    mine = await my_votes(vault=vault, member_id=member_id, proposal_ids=proposals)
    return sum(1 for vote in mine.values() if vote.choice is not None)


async def withdraw_member(*, vault: Vault, member_id: uuid.UUID) -> int:
    """Inside the erasure's transaction, before the key is destroyed: delete the member's
    ballots and roll entries. Closed tallies are stored totals and do not change; an open
    proposal loses the vote and the place on its roll. Returns the ballots deleted."""
    proposals = [uuid.UUID(str(p)) for p in await Proposal.all().values_list("id", flat=True)]
    keys = [voter_key(vault, p, member_id) for p in proposals]
    entries = await RollEntry.filter(voter_key__in=keys) if keys else []
    if not entries:
        return 0
    ballots: list[uuid.UUID] = []
    try:
        cipher = await vault.cipher_for(member_id)
        ballots = [b for e in entries if (b := _open_link(cipher, e)) is not None]
    except KeyMissingError:
        pass  # already shredded: the links are unreadable, the roll entries still go
    deleted: int = await Ballot.filter(id__in=ballots).delete() if ballots else 0
    await RollEntry.filter(id__in=[e.id for e in entries]).delete()
    return deleted
