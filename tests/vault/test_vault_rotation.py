"""KEK rotation (CR-05): data stays readable, an interrupted rotation resumes, and old KEKs
leave a file-backed keyring only after a count shows no data key still uses them."""

from __future__ import annotations

import base64
import json
import logging
import secrets
import uuid
from pathlib import Path

import pytest

from coop.config import Settings
from coop.logs import JsonFormatter
from coop.vault import MemberCipher, Vault, load_keyring
from coop.vault.keyring import KEYRING_FILE, parse_master_key
from coop.vault.models import MemberKey
from tests.conftest import make_master_key

PLACE = {"table": "record", "column": "body", "row": "r-1"}
SECRET = secrets.token_bytes(32)


class CrashingVault(Vault):
    """Dies after `batches` committed batches, like a process killed mid-rotation."""

    batches = 1

    async def _rewrap_batch(self, active: str, batch_size: int) -> int:
        if self.batches == 0:
            raise RuntimeError("simulated crash")
        self.batches -= 1
        return await super()._rewrap_batch(active, batch_size)


class StuckVault(Vault):
    """Never manages to re-wrap anything (e.g. every batch loses a race)."""

    async def _rewrap_batch(self, active: str, batch_size: int) -> int:
        return 0


def file_vault(data_dir: Path, cls: type[Vault] = Vault) -> Vault:
    return cls(load_keyring(Settings(data_dir=data_dir, dev=True)), SECRET)


def file_keys(data_dir: Path) -> dict[str, object]:
    body: dict[str, object] = json.loads((data_dir / KEYRING_FILE).read_text())
    return body


async def seed(vault: Vault, count: int) -> dict[uuid.UUID, bytes]:
    blobs = {}
    for _ in range(count):
        member = uuid.uuid4()
        cipher: MemberCipher = await vault.create_key(member)
        blobs[member] = cipher.seal(f"data of {member}", **PLACE)
    return blobs


async def assert_all_open(vault: Vault, blobs: dict[uuid.UUID, bytes]) -> None:
    for member, blob in blobs.items():
        cipher = await vault.cipher_for(member)
        assert cipher.open_text(blob, **PLACE) == f"data of {member}"


async def test_env_rotation_rewraps_under_the_first_key_and_frees_the_old_one(db: str) -> None:
    old = make_master_key()
    new = make_master_key().replace("test-kek-1", "test-kek-2")
    blobs = await seed(Vault(parse_master_key(old), SECRET), 5)

    report = await Vault(parse_master_key(f"{new},{old}"), SECRET).rotate(new_kek=False)

    assert (report.rewrapped, report.remaining, report.active_kek) == (5, 0, "test-kek-2")
    assert report.retired == ()  # env keyrings are edited by the operator, not by coop
    assert set(await MemberKey.all().values_list("kek_id", flat=True)) == {"test-kek-2"}
    await assert_all_open(Vault(parse_master_key(new), SECRET), blobs)


async def test_file_rotation_adds_a_kek_and_retires_the_old_one(db: str, tmp_path: Path) -> None:
    vault = file_vault(tmp_path)
    old_kek = vault.keyring.active_id
    blobs = await seed(vault, 5)

    report = await vault.rotate(batch_size=2)

    assert report.rewrapped == 5
    assert report.remaining == 0
    assert report.retired == (old_kek,)
    assert report.active_kek != old_kek
    assert file_keys(tmp_path)["active"] == report.active_kek
    assert list(file_keys(tmp_path)["keys"]) == [report.active_kek]  # type: ignore[call-overload]
    assert (tmp_path / KEYRING_FILE).stat().st_mode & 0o777 == 0o600
    await assert_all_open(file_vault(tmp_path), blobs)


async def test_rotation_interrupted_midway_keeps_data_readable_and_resumes(
    db: str, tmp_path: Path
) -> None:
    blobs = await seed(file_vault(tmp_path), 5)
    old_kek = file_vault(tmp_path).keyring.active_id

    with pytest.raises(RuntimeError, match="simulated crash"):
        await file_vault(tmp_path, CrashingVault).rotate(batch_size=2)

    # Half-way: both KEKs are in the file, two keys moved, everything still opens.
    after_crash = file_vault(tmp_path)
    new_kek = after_crash.keyring.active_id
    assert new_kek != old_kek
    assert set(after_crash.keyring.keys) == {old_kek, new_kek}
    assert await MemberKey.filter(kek_id=new_kek).count() == 2
    await assert_all_open(after_crash, blobs)

    report = await after_crash.rotate(batch_size=2)

    assert report.resumed
    assert (report.rewrapped, report.remaining) == (3, 0)
    assert report.active_kek == new_kek  # resumed, not started over under a third KEK
    assert report.retired == (old_kek,)
    assert set(file_vault(tmp_path).keyring.keys) == {new_kek}
    await assert_all_open(file_vault(tmp_path), blobs)


async def test_old_kek_is_kept_while_any_key_still_uses_it(db: str, tmp_path: Path) -> None:
    blobs = await seed(file_vault(tmp_path), 3)
    old_kek = file_vault(tmp_path).keyring.active_id

    report = await file_vault(tmp_path, StuckVault).rotate()

    assert report.remaining == 3
    assert report.retired == ()
    assert old_kek in file_vault(tmp_path).keyring.keys
    await assert_all_open(file_vault(tmp_path), blobs)


async def test_a_running_server_picks_up_the_new_kek_after_rotation(
    db: str, tmp_path: Path
) -> None:
    server = file_vault(tmp_path)
    blobs = await seed(server, 2)

    report = await file_vault(tmp_path).rotate()  # another process: `coop keys rotate`

    member = uuid.uuid4()
    blobs[member] = (await server.create_key(member)).seal(f"data of {member}", **PLACE)
    assert (await MemberKey.get(member_id=member)).kek_id == report.active_kek
    await assert_all_open(server, blobs)


async def test_rotation_with_nothing_stored_is_a_no_op(db: str, vault: Vault) -> None:
    report = await vault.rotate(new_kek=False)
    assert (report.rewrapped, report.remaining) == (0, 0)


async def test_rotation_logs_hold_no_key_material(
    db: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    vault = file_vault(tmp_path)
    await seed(vault, 2)
    old_keys = dict(vault.keyring.keys)
    with caplog.at_level(logging.DEBUG):
        await vault.rotate()
    keys = {**old_keys, **vault.keyring.keys}
    lines = [JsonFormatter().format(record) for record in caplog.records]
    assert lines, "rotation logs its progress"
    for key in keys.values():
        for form in (key.hex(), base64.urlsafe_b64encode(key).decode().rstrip("=")):
            assert not any(form in line for line in lines)
