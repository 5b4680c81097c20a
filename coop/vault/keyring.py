"""Key-encryption keys (KEKs) and the server secret: where they come from, and how they change.

`COOP_MASTER_KEY` holds one or more KEKs as `id:base64url` separated by commas, the first one
active; a bare base64url key gets an id from its fingerprint. Without it, a keyring file in the
data directory is used; in dev mode (`COOP_DEV=1`) that file is generated on first run, loudly,
but never over existing data (see `Vault.check_keyring`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from coop.config import Settings
from coop.errors import ConfigError
from coop.vault.cipher import KEY_BYTES, new_key

log = logging.getLogger("coop.vault")

KEYRING_FILE = "keyring.json"
SECRET_FILE = "secret.key"  # noqa: S105 (a file name, not a secret)


def _b64decode(text: str, what: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        raise ConfigError(f"{what} is not valid base64url") from None
    if len(raw) != KEY_BYTES:
        raise ConfigError(f"{what} must decode to {KEY_BYTES} bytes, got {len(raw)}")
    return raw


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def fingerprint_id(key: bytes) -> str:
    return "k-" + hashlib.sha256(b"coop-kek-id|" + key).hexdigest()[:12]


@dataclass
class Keyring:
    """The KEKs by id, which one wraps new keys, and the file they live in (if any)."""

    keys: dict[str, bytes] = field(repr=False)  # key material never shows in a repr
    active_id: str
    path: Path | None = None
    generated: bool = field(default=False, compare=False)
    _mtime_ns: int = field(default=0, compare=False, repr=False)

    @property
    def active(self) -> bytes:
        return self.keys[self.active_id]

    def get(self, kek_id: str) -> bytes:
        if kek_id not in self.keys:
            self.refresh()
        try:
            return self.keys[kek_id]
        except KeyError:
            raise ConfigError(
                f"Key-encryption key {kek_id!r} is not in the keyring; "
                "restore it to COOP_MASTER_KEY or the keyring file."
            ) from None

    @property
    def is_file_backed(self) -> bool:
        return self.path is not None

    def add_new_active(self) -> str:
        """Generate a new KEK, make it active and save the file (file-backed keyrings only)."""
        if self.path is None:
            raise ConfigError(
                "The keyring comes from COOP_MASTER_KEY: put the new key first in "
                "COOP_MASTER_KEY (id:base64url), then run `coop keys rotate` again."
            )
        key = new_key()
        kek_id = fingerprint_id(key)
        self.keys[kek_id] = key
        self.active_id = kek_id
        self.save()
        return kek_id

    def refresh(self) -> None:
        """Reload a file-backed keyring that another process (`coop keys rotate`) changed."""
        if self.path is None:
            return
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return
        if mtime != self._mtime_ns:
            fresh = _read_keyring_file(self.path)
            self.keys, self.active_id, self._mtime_ns = fresh.keys, fresh.active_id, mtime

    def retire(self, kek_ids: set[str]) -> None:
        for kek_id in kek_ids - {self.active_id}:
            self.keys.pop(kek_id, None)
        if self.path is not None:
            self.save()

    def save(self) -> None:
        assert self.path is not None
        body = {
            "active": self.active_id,
            "keys": {kid: _b64encode(k) for kid, k in self.keys.items()},
        }
        _write_private(self.path, json.dumps(body, indent=2) + "\n")
        self._mtime_ns = self.path.stat().st_mtime_ns


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def parse_master_key(raw: str) -> Keyring:
    keys: dict[str, bytes] = {}
    order: list[str] = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        if ":" in part:
            kek_id, encoded = part.split(":", 1)
            kek_id = kek_id.strip()
            if not kek_id:
                raise ConfigError("COOP_MASTER_KEY has an entry with an empty key id")
        else:
            kek_id, encoded = "", part
        key = _b64decode(encoded.strip(), "COOP_MASTER_KEY")
        kek_id = kek_id or fingerprint_id(key)
        if kek_id in keys:
            raise ConfigError(f"COOP_MASTER_KEY names key id {kek_id!r} twice")
        keys[kek_id] = key
        order.append(kek_id)
    if not order:
        raise ConfigError("COOP_MASTER_KEY is set but holds no key")
    return Keyring(keys=keys, active_id=order[0])


def _read_keyring_file(path: Path) -> Keyring:
    try:
        mtime = path.stat().st_mtime_ns
        body = json.loads(path.read_text())
        keys = {kid: _b64decode(v, f"Key {kid!r} in {path}") for kid, v in body["keys"].items()}
        active = body["active"]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ConfigError(f"The keyring file {path} is malformed") from None
    if active not in keys:
        raise ConfigError(f"The keyring file {path} names an active key it does not hold")
    return Keyring(keys=keys, active_id=active, path=path, _mtime_ns=mtime)


def load_keyring(settings: Settings) -> Keyring:
    """The KEKs from COOP_MASTER_KEY, else the keyring file (generated only in dev mode)."""
    if settings.master_key:
        return parse_master_key(settings.master_key)
    path = settings.data_dir / KEYRING_FILE
    if path.exists():
        ring = _read_keyring_file(path)
        if settings.dev:
            log.warning("DEV MODE: member data keys are wrapped by the keyring file %s.", path)
        return ring
    if not settings.dev:
        raise ConfigError(
            "No key-encryption key: set COOP_MASTER_KEY (see docs/operations.md), "
            "or COOP_DEV=1 to generate a development keyring."
        )
    key = new_key()
    ring = Keyring(keys={fingerprint_id(key): key}, active_id=fingerprint_id(key), path=path)
    ring.generated = True
    ring.save()
    log.warning(
        "DEV MODE: generated a new key-encryption keyring at %s. "
        "Anyone with this file can decrypt member data; never use it in production.",
        path,
    )
    return ring


def load_secret_key(settings: Settings) -> bytes:
    """The server secret (blind indexes, CSRF): COOP_SECRET_KEY, else a dev-mode file."""
    if settings.secret_key:
        raw = settings.secret_key.encode()
        if len(raw) < 32:
            raise ConfigError("COOP_SECRET_KEY must be at least 32 characters")
        return raw
    path = settings.data_dir / SECRET_FILE
    if path.exists():
        return path.read_bytes().strip()
    if not settings.dev:
        raise ConfigError(
            "No server secret: set COOP_SECRET_KEY (32+ random characters), "
            "or COOP_DEV=1 to generate one for development."
        )
    _write_private(path, secrets.token_urlsafe(48))
    log.warning("DEV MODE: generated a server secret at %s.", path)
    return path.read_bytes().strip()


def generate_master_key() -> str:
    """A new `id:base64url` entry for COOP_MASTER_KEY (printed by `coop keys generate`)."""
    key = new_key()
    return f"{fingerprint_id(key)}:{_b64encode(key)}"
