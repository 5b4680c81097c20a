"""Member data keys in the database: wrapping binds the member, shredding, startup checks."""

from __future__ import annotations

import secrets
import uuid
from pathlib import Path

import pytest

from coop.config import Settings
from coop.errors import ConfigError, IntegrityError, KeyMissingError
from coop.vault import Vault, load_keyring, load_secret_key
from coop.vault.keyring import parse_master_key
from coop.vault.models import MemberKey
from tests.conftest import make_master_key

PLACE = {"table": "record", "column": "body", "row": "r-1"}


def vault_with(master_key: str) -> Vault:
    return Vault(parse_master_key(master_key), secrets.token_bytes(32))


async def test_member_data_opens_with_the_stored_key(db: str, vault: Vault) -> None:
    member = uuid.uuid4()
    blob = (await vault.create_key(member)).seal("hello", **PLACE)
    assert (await vault.cipher_for(member)).open_text(blob, **PLACE) == "hello"


async def test_stored_data_key_is_wrapped_not_plain(db: str, vault: Vault) -> None:
    member = uuid.uuid4()
    await vault.create_key(member)
    row = await MemberKey.get(member_id=member)
    assert row.kek_id == vault.keyring.active_id
    assert len(bytes(row.wrapped)) == 1 + 12 + 32 + 16


async def test_wrapped_keys_swapped_between_members_fail_to_open(db: str, vault: Vault) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    await vault.create_key(alice)
    await vault.create_key(bob)
    alice_row, bob_row = await MemberKey.get(member_id=alice), await MemberKey.get(member_id=bob)
    await MemberKey.filter(member_id=alice).update(wrapped=bytes(bob_row.wrapped))
    await MemberKey.filter(member_id=bob).update(wrapped=bytes(alice_row.wrapped))
    for member in (alice, bob):
        with pytest.raises(IntegrityError) as caught:
            await vault.cipher_for(member)
        assert caught.value.code == "integrity_error"


async def test_after_shred_nothing_of_that_member_opens(db: str, vault: Vault) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    alice_cipher = await vault.create_key(alice)
    alice_blobs = [alice_cipher.seal(f"a{i}", table="t", column="c", row=i) for i in range(3)]
    bob_blob = (await vault.create_key(bob)).seal("b", **PLACE)

    assert await vault.shred(alice) is True

    with pytest.raises(KeyMissingError) as caught:
        await vault.cipher_for(alice)
    assert caught.value.code == "key_destroyed"
    assert await MemberKey.filter(member_id=alice).count() == 0
    assert len(alice_blobs) == 3  # the ciphertext still exists, but no stored key opens it
    assert (await vault.cipher_for(bob)).open_text(bob_blob, **PLACE) == "b"
    assert await vault.shred(alice) is False  # idempotent: a second erase is harmless


async def test_unknown_member_has_no_key(db: str, vault: Vault) -> None:
    with pytest.raises(KeyMissingError):
        await vault.cipher_for(uuid.uuid4())


async def test_check_keyring_passes_on_an_empty_database(db: str, vault: Vault) -> None:
    await vault.check_keyring()


async def test_check_keyring_refuses_keys_wrapped_by_an_unknown_kek(db: str, vault: Vault) -> None:
    await vault.create_key(uuid.uuid4())
    stranger = vault_with(make_master_key().replace("test-kek-1", "other-kek"))
    with pytest.raises(ConfigError) as caught:
        await stranger.check_keyring()
    assert "test-kek-1" in caught.value.message
    assert "refusing to start" in caught.value.message


async def test_dev_mode_never_silently_replaces_a_lost_keyring(
    db: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dev = Settings(data_dir=tmp_path / "first", dev=True, secret_key="s" * 40)
    await Vault(load_keyring(dev), load_secret_key(dev)).create_key(uuid.uuid4())

    # Same database, but the keyring file is gone: dev mode generates a fresh keyring...
    lost = Settings(data_dir=tmp_path / "lost", dev=True, secret_key="s" * 40)
    ring = load_keyring(lost)
    assert ring.generated
    # ...and the startup check refuses to run with it over the existing data.
    with pytest.raises(ConfigError, match="refusing to start"):
        await Vault(ring, load_secret_key(lost)).check_keyring()


async def test_wrong_kek_with_the_right_id_fails_integrity(db: str, vault: Vault) -> None:
    member = uuid.uuid4()
    await vault.create_key(member)
    impostor = vault_with(make_master_key())  # same id "test-kek-1", different bytes
    with pytest.raises(IntegrityError):
        await impostor.cipher_for(member)


async def test_check_keyring_refuses_a_wrong_kek_with_the_right_id(db: str, vault: Vault) -> None:
    await vault.create_key(uuid.uuid4())
    await vault.check_keyring()
    impostor = vault_with(make_master_key())  # same id "test-kek-1", different bytes
    with pytest.raises(ConfigError) as caught:
        await impostor.check_keyring()
    assert "test-kek-1 do not open" in caught.value.message
