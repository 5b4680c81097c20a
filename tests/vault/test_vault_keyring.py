"""Where KEKs come from: COOP_MASTER_KEY parsing, the dev keyring file, and refusals."""

from __future__ import annotations

import base64
import json
import logging
import secrets
from pathlib import Path

import pytest

from coop.config import Settings
from coop.errors import ConfigError
from coop.vault import load_keyring, load_secret_key
from coop.vault.keyring import KEYRING_FILE, SECRET_FILE, generate_master_key, parse_master_key


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_master_key_entries_are_id_colon_base64url_and_the_first_is_active() -> None:
    one, two = secrets.token_bytes(32), secrets.token_bytes(32)
    ring = parse_master_key(f"new:{b64(two)}, old:{b64(one)}")
    assert ring.active_id == "new"
    assert ring.keys == {"new": two, "old": one}
    assert not ring.is_file_backed


def test_keyring_repr_shows_ids_not_keys() -> None:
    key = secrets.token_bytes(32)
    ring = parse_master_key(f"k1:{b64(key)}")
    assert "k1" in repr(ring)
    assert b64(key) not in repr(ring) and repr(key) not in repr(ring)


def test_a_bare_key_gets_a_stable_fingerprint_id() -> None:
    key = secrets.token_bytes(32)
    ring = parse_master_key(b64(key))
    assert ring.active_id.startswith("k-")
    assert parse_master_key(b64(key) + "=").active_id == ring.active_id  # padding is optional


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("k1:not base64!", "not valid base64url"),
        ("k1:" + b64(b"short"), "must decode to 32 bytes"),
        (":" + b64(bytes(32)), "empty key id"),
        (f"a:{b64(bytes(32))},a:{b64(bytes(32))}", "names key id 'a' twice"),
        (" , ", "holds no key"),
    ],
    ids=["not-base64", "short", "empty-id", "duplicate-id", "empty"],
)
def test_malformed_master_key_is_a_clear_config_error(raw: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_master_key(raw)
    assert message in caught.value.message
    assert caught.value.code == "config_error"
    assert b64(bytes(32)) not in caught.value.message  # never echo key material


def test_generated_entry_is_accepted_by_the_parser() -> None:
    entry = generate_master_key()
    kek_id, _, encoded = entry.partition(":")
    ring = parse_master_key(entry)
    assert ring.active_id == kek_id
    assert len(ring.keys[kek_id]) == 32
    assert encoded != generate_master_key().partition(":")[2]


def test_env_keyring_wins_over_a_keyring_file(tmp_path: Path) -> None:
    load_keyring(Settings(data_dir=tmp_path, dev=True))
    entry = generate_master_key()
    ring = load_keyring(Settings(data_dir=tmp_path, master_key=entry))
    assert ring.active_id == entry.partition(":")[0]


def test_dev_mode_generates_a_private_keyring_file_loudly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(data_dir=tmp_path / "var", dev=True)
    with caplog.at_level(logging.WARNING, logger="coop.vault"):
        ring = load_keyring(settings)
        load_secret_key(settings)
    path = tmp_path / "var" / KEYRING_FILE
    assert ring.generated and ring.path == path
    assert path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "var" / SECRET_FILE).stat().st_mode & 0o777 == 0o600
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("DEV MODE" in w and "never use it in production" in w for w in warnings)
    # Key material never reaches the log.
    assert not any(b64(key) in w for w in warnings for key in ring.keys.values())


def test_dev_keyring_file_is_reused_on_the_next_start(tmp_path: Path) -> None:
    first = load_keyring(Settings(data_dir=tmp_path, dev=True))
    second = load_keyring(Settings(data_dir=tmp_path, dev=True))
    assert not second.generated
    assert second.keys == first.keys and second.active_id == first.active_id


def test_without_keys_outside_dev_mode_coop_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="COOP_MASTER_KEY"):
        load_keyring(Settings(data_dir=tmp_path))
    with pytest.raises(ConfigError, match="COOP_SECRET_KEY"):
        load_secret_key(Settings(data_dir=tmp_path))
    assert not (tmp_path / KEYRING_FILE).exists()


def test_short_secret_key_is_refused() -> None:
    with pytest.raises(ConfigError, match="at least 32"):
        load_secret_key(Settings(secret_key="short"))


@pytest.mark.parametrize(
    "body",
    ["not json", json.dumps({"keys": {}}), json.dumps({"active": "a", "keys": {"a": "x"}})],
    ids=["garbage", "no-active", "bad-key"],
)
def test_malformed_keyring_file_is_a_config_error(tmp_path: Path, body: str) -> None:
    (tmp_path / KEYRING_FILE).write_text(body)
    with pytest.raises(ConfigError, match="malformed"):
        load_keyring(Settings(data_dir=tmp_path, dev=True))


def test_keyring_file_naming_a_missing_active_key_is_refused(tmp_path: Path) -> None:
    body = {"active": "gone", "keys": {"k": b64(bytes(32))}}
    (tmp_path / KEYRING_FILE).write_text(json.dumps(body))
    with pytest.raises(ConfigError, match="active key it does not hold"):
        load_keyring(Settings(data_dir=tmp_path))
