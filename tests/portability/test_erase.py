"""Erasure: the key first, then every row; idempotent, convergent, and total (ER-01, ER-06)."""

from __future__ import annotations

import pytest

from coop.config import Settings
from coop.connectors.models import Record
from coop.consent import service as consent
from coop.errors import IntegrityError, KeyMissingError
from coop.members import service as members
from coop.members.models import Member
from coop.portability import erase, inventory, ledger
from coop.portability.models import DeletionLedger
from coop.vault import Vault
from tests.portability.factories import PASSWORD, make_app, make_person


async def test_erase_leaves_no_row_in_any_table_but_the_ledger(
    db: str, vault: Vault, settings: Settings
) -> None:
    app_a, _ = await make_app(vault, "Alpha")
    app_b, _ = await make_app(vault, "Beta")
    person = await make_person(vault, settings, app_ids=[app_a, app_b])
    other = await make_person(vault, settings, app_ids=[app_a])
    before = await inventory.count_rows(person.member_id)
    assert before["connector_record"] == person.records
    assert {"member", "vault_member_key", "web_session", "consent_grant", "oauth_token"} <= set(
        before
    )

    result = await erase.erase_member(vault=vault, settings=settings, member_id=person.member_id)

    assert await inventory.count_rows(person.member_id) == {}
    assert result.receipt.deleted["synced records"] == person.records
    assert {a.app for a in result.receipt.apps} == {"Alpha", "Beta"}
    entry = await DeletionLedger.get(id=result.receipt.ledger_id)
    assert entry.member_hash == ledger.member_hash(vault, person.member_id)
    assert str(person.member_id) not in str(entry.receipt)
    # the other member is untouched
    assert (await inventory.count_rows(other.member_id))["connector_record"] == other.records


async def test_sealed_rows_captured_before_erasure_cannot_be_opened_after(
    db: str, vault: Vault, settings: Settings
) -> None:
    person = await make_person(vault, settings)
    captured = await Record.filter(member_id=person.member_id).values("id", "body_sealed")
    old_cipher = await vault.cipher_for(person.member_id)

    await erase.erase_member(vault=vault, settings=settings, member_id=person.member_id)

    with pytest.raises(KeyMissingError):
        await vault.cipher_for(person.member_id)
    # Even a fresh key for the same id (a forged key row) cannot open the old blobs.
    forged = await vault.create_key(person.member_id)
    for row in captured:
        with pytest.raises(IntegrityError):
            forged.open(
                row["body_sealed"], table="connector_record", column="body_sealed", row=row["id"]
            )
    assert old_cipher.member_id == person.member_id


async def test_tokens_and_sessions_are_dead_once_the_key_is_destroyed(
    db: str, vault: Vault, settings: Settings
) -> None:
    app_id, _ = await make_app(vault, "Alpha")
    person = await make_person(vault, settings, app_ids=[app_id])
    assert await consent.resolve_bearer(person.access_tokens[0]) is not None

    async def stop_after_key(step: str) -> None:
        if step == "key_destroyed":
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        await erase.erase_member(
            vault=vault, settings=settings, member_id=person.member_id, after_step=stop_after_key
        )
    assert await consent.resolve_bearer(person.access_tokens[0]) is None
    assert await consent.resolve_bearer(person.personal_token) is None
    with pytest.raises(Exception) as caught:
        await members.authenticate(
            vault=vault,
            settings=settings,
            email=person.email,
            password=PASSWORD,
            client_address="127.0.0.1",
        )
    assert getattr(caught.value, "code", "") == "invalid_credentials"
    # half-deleted: the member row still exists, but can never log in
    assert await Member.exists(id=person.member_id)


@pytest.mark.parametrize(
    "step", ["plan", "key_destroyed", "ledger_file", "upstream", "purged", "notified"]
)
async def test_killed_after_any_step_a_rerun_converges(
    db: str, vault: Vault, settings: Settings, step: str
) -> None:
    app_id, _ = await make_app(vault, "Alpha")
    person = await make_person(vault, settings, app_ids=[app_id])

    async def kill(at: str) -> None:
        if at == step:
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        await erase.erase_member(
            vault=vault, settings=settings, member_id=person.member_id, after_step=kill
        )
    await erase.resume_pending(vault=vault, settings=settings)
    again = await erase.erase_member(vault=vault, settings=settings, member_id=person.member_id)
    if step == "plan":  # nothing had happened yet: the re-run is the erasure
        assert again.receipt_token is not None
    assert await inventory.count_rows(person.member_id) == {}
    entries = await DeletionLedger.all()
    assert len(entries) == 1 and entries[0].state == "done"
    assert len(ledger.read(settings)) == 1


async def test_resuming_an_interrupted_erasure_hashes_no_other_member(
    db: str, vault: Vault, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Start-up after a crash finds the member through the lock-out, not by hashing every
    member id (issue 15: 23 s at 1M members)."""
    person = await make_person(vault, settings)
    others = [await make_person(vault, settings) for _ in range(3)]

    async def kill(at: str) -> None:
        if at == "ledger_file":
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        await erase.erase_member(
            vault=vault, settings=settings, member_id=person.member_id, after_step=kill
        )
    hashed: list[object] = []
    real_hash = ledger.member_hash
    monkeypatch.setattr(ledger, "member_hash", lambda v, m: hashed.append(m) or real_hash(v, m))

    assert await erase.resume_pending(vault=vault, settings=settings) == 1

    assert hashed == []
    assert await inventory.count_rows(person.member_id) == {}
    assert (await DeletionLedger.get()).state == "done"
    for other in others:
        assert (await inventory.count_rows(other.member_id))["member"] == 1


async def test_a_second_erasure_returns_the_same_receipt(
    db: str, vault: Vault, settings: Settings
) -> None:
    person = await make_person(vault, settings)
    first = await erase.erase_member(vault=vault, settings=settings, member_id=person.member_id)
    second = await erase.erase_member(vault=vault, settings=settings, member_id=person.member_id)
    assert second.receipt.ledger_id == first.receipt.ledger_id
    assert second.receipt_token is None


async def test_two_simultaneous_erasures_converge_on_one_ledger_entry(
    db: str, vault: Vault, settings: Settings
) -> None:
    import asyncio

    app_id, _ = await make_app(vault, "Alpha")
    person = await make_person(vault, settings, app_ids=[app_id])
    first, second = await asyncio.gather(
        erase.erase_member(vault=vault, settings=settings, member_id=person.member_id),
        erase.erase_member(vault=vault, settings=settings, member_id=person.member_id),
    )
    assert first.receipt.ledger_id == second.receipt.ledger_id
    assert [first.receipt_token is None, second.receipt_token is None].count(True) == 1
    assert await DeletionLedger.all().count() == 1
    assert await inventory.count_rows(person.member_id) == {}
