"""`coop proposals list|open|close` against the test database, as the operator runs them (a
real process, the real sandbox loading the reference scorers). Bad input: exit 2, one line,
nothing changed."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

from coop.config import Settings
from coop.governance import service as governance
from coop.governance.models import Proposal
from coop.types import utcnow
from coop.vault import Vault
from tests.api.factories import make_member


def coop(
    settings: Settings, *args: str, governance_on: bool = True
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("COOP_")}
    env = {
        **clean,
        "COOP_DATABASE_URL": settings.database_url,
        "COOP_DATA_DIR": str(settings.data_dir),
        "COOP_MASTER_KEY": settings.master_key or "",
        "COOP_SECRET_KEY": settings.secret_key or "",
        "COOP_GOVERNANCE": "1" if governance_on else "0",
        "COOP_GOVERNANCE_VOTING_HOURS": "48",
    }
    return subprocess.run(
        [sys.executable, "-m", "coop", *args], env=env, capture_output=True, text=True, timeout=120
    )


def one_line(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 2, done
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    for word in words:
        assert word in done.stderr, done.stderr


async def test_the_operator_opens_lists_and_closes_a_proposal(
    db: str, vault: Vault, settings: Settings
) -> None:
    alice, bob = await make_member(vault), await make_member(vault)
    await governance.record_baseline(metas=[])  # governance was on before reach was installed

    opened = coop(settings, "proposals", "open", "reach")
    assert opened.returncode == 0, opened.stderr
    assert "install reach" in opened.stdout and "2 members on the roll" in opened.stdout
    [proposal] = await governance.list_proposals()
    assert (proposal.opened_by, proposal.rules.voting_hours) == ("operator", 48)
    assert proposal.distribution_hash  # what members are shown they vote on

    listed = coop(settings, "proposals", "list")
    assert f"{proposal.id}  open    install  reach" in listed.stdout

    one_line(coop(settings, "proposals", "close", str(proposal.id)), "open until")
    for member in (alice, bob):
        await governance.cast_vote(
            vault=vault, member_id=member.id, proposal_id=proposal.id, choice="yes"
        )
    await Proposal.filter(id=proposal.id).update(closes_at=utcnow() - timedelta(minutes=1))
    closed = coop(settings, "proposals", "close", "--due")
    assert closed.returncode == 0, closed.stderr
    assert "approved  yes 2, no 0, abstain 0 of 2" in closed.stdout
    assert (await governance.standing(scorer="reach", version=proposal.version)).approved

    one_line(coop(settings, "proposals", "close", str(proposal.id)), "already closed")
    retire = coop(settings, "proposals", "open", "reach", "--retire")
    assert retire.returncode == 0 and ": retire reach" in retire.stdout, retire.stderr


async def test_bad_input_exits_2_with_one_line_and_changes_nothing(
    db: str, vault: Vault, settings: Settings
) -> None:
    await make_member(vault)
    one_line(coop(settings, "proposals", "open", "reach", governance_on=False), "COOP_GOVERNANCE")
    one_line(coop(settings, "proposals", "open", "nosuch"), "nosuch", "is installed and loaded")
    one_line(coop(settings, "proposals", "open", "reach", "--version", "99.0"), "99.0")
    one_line(coop(settings, "proposals", "close", "not-an-id"), "not a proposal id")
    one_line(coop(settings, "proposals", "close", "0" * 32), "no such proposal")
    one_line(coop(settings, "proposals", "close"), "--due")
    assert not await Proposal.exists()
    # The first time governance is on, what is installed counts as approved: nothing to vote.
    one_line(coop(settings, "proposals", "open", "reach"), "already approved")
    assert not await Proposal.exists()
