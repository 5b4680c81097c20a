"""`coop keys generate` and `coop keys rotate` end to end: real processes, a SQLite data dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from coop.vault.keyring import KEYRING_FILE

# Seeds or checks member data through the public vault API, in its own process like a server.
SCRIPT = """
import asyncio, json, sys, uuid
from tortoise import Tortoise
from coop.app import build_runtime
from coop.config import Settings
from coop.db import tortoise_config

PLACE = {"table": "record", "column": "body", "row": "r-1"}

async def main(mode):
    settings = Settings.from_env()
    vault = build_runtime(settings).vault
    await Tortoise.init(config=tortoise_config(settings))
    try:
        if mode == "seed":
            blobs = {}
            for i in range(int(sys.argv[2])):
                member = uuid.uuid4()
                blobs[str(member)] = (await vault.create_key(member)).seal(
                    "data of " + str(member), **PLACE).hex()
            print(json.dumps(blobs))
        else:
            blobs = json.loads(sys.stdin.read())
            for member, blob in blobs.items():
                cipher = await vault.cipher_for(uuid.UUID(member))
                assert cipher.open_text(bytes.fromhex(blob), **PLACE) == "data of " + member
            print("ok", len(blobs))
    finally:
        await Tortoise.close_connections()

asyncio.run(main(sys.argv[1]))
"""


def base_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COOP_")}
    env.update(COOP_DATA_DIR=str(data_dir), **extra)
    return env


def coop(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coop", *args], env=env, capture_output=True, text=True, timeout=60
    )


def seed(env: dict[str, str], count: int) -> str:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, "seed", str(count)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def check_opens(env: dict[str, str], blobs: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, "check"],
        env=env,
        input=blobs,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"ok {len(json.loads(blobs))}"


def test_keys_generate_prints_one_usable_master_key_entry(tmp_path: Path) -> None:
    done = coop(base_env(tmp_path), "keys", "generate")
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    kek_id, _, encoded = lines[0].partition(":")
    assert kek_id.startswith("k-") and len(encoded) == 43


def test_keys_rotate_with_a_dev_keyring_file(tmp_path: Path) -> None:
    env = base_env(tmp_path / "var", COOP_DEV="1")
    assert coop(env, "migrate").returncode == 0
    blobs = seed(env, 3)
    old = json.loads((tmp_path / "var" / KEYRING_FILE).read_text())["active"]

    done = coop(env, "keys", "rotate")

    assert done.returncode == 0, done.stderr
    ring = json.loads((tmp_path / "var" / KEYRING_FILE).read_text())
    new = ring["active"]
    assert new != old and list(ring["keys"]) == [new]
    assert done.stdout.strip() == (
        f"re-wrapped 3 member keys under {new}; 0 remaining; retired {old}"
    )
    check_opens(env, blobs)


def test_keys_rotate_with_master_key_lets_the_old_key_be_removed(tmp_path: Path) -> None:
    old = coop(base_env(tmp_path), "keys", "generate").stdout.strip()
    new = coop(base_env(tmp_path), "keys", "generate").stdout.strip()
    secret = "x" * 48
    env_old = base_env(tmp_path / "var", COOP_MASTER_KEY=old, COOP_SECRET_KEY=secret)
    assert coop(env_old, "migrate").returncode == 0
    blobs = seed(env_old, 3)

    env_both = {**env_old, "COOP_MASTER_KEY": f"{new},{old}"}
    done = coop(env_both, "keys", "rotate", "--rewrap-only")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"re-wrapped 3 member keys under {new.partition(':')[0]}")

    env_new = {**env_old, "COOP_MASTER_KEY": new}
    check_opens(env_new, blobs)
    assert not (tmp_path / "var" / KEYRING_FILE).exists()


def test_a_server_without_the_kek_of_stored_keys_refuses_to_run(tmp_path: Path) -> None:
    secret = "x" * 48
    key = coop(base_env(tmp_path), "keys", "generate").stdout.strip()
    env = base_env(tmp_path / "var", COOP_MASTER_KEY=key, COOP_SECRET_KEY=secret)
    assert coop(env, "migrate").returncode == 0
    seed(env, 1)

    # The operator lost COOP_MASTER_KEY and falls back to dev mode: coop must not carry on.
    lost = base_env(tmp_path / "var", COOP_DEV="1", COOP_SECRET_KEY=secret)
    done = coop(lost, "keys", "rotate")

    assert done.returncode == 2
    last = done.stderr.splitlines()[-1]  # after the loud dev-mode warning
    assert last.startswith("coop: Member data keys are wrapped by key-encryption keys")
    assert last.endswith("refusing to start.")
    assert key.partition(":")[0] in last
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("master_key", ["nonsense!", "k1:c2hvcnQ"])
def test_malformed_master_key_exits_2_with_one_line(tmp_path: Path, master_key: str) -> None:
    done = coop(base_env(tmp_path, COOP_MASTER_KEY=master_key), "keys", "rotate")
    assert done.returncode == 2
    assert done.stderr.startswith("coop: COOP_MASTER_KEY")
    assert done.stderr.count("\n") == 1
