"""App webhook secrets: derived from the server secret and a stored salt, never stored."""

from __future__ import annotations

import base64
import secrets

from coop.vault import Vault
from coop.vault.keyring import parse_master_key
from coop.vault.service import WEBHOOK_SECRET_PREFIX
from tests.conftest import make_master_key


def vault_with(server_secret: bytes) -> Vault:
    return Vault(parse_master_key(make_master_key()), server_secret)


def test_webhook_secret_is_stable_for_one_app_and_salt() -> None:
    server_secret = secrets.token_bytes(32)
    one, two = vault_with(server_secret), vault_with(server_secret)
    assert one.app_webhook_secret("coop_a", "salt-1") == two.app_webhook_secret("coop_a", "salt-1")


def test_webhook_secret_is_base64url_with_at_least_256_bits() -> None:
    secret = vault_with(secrets.token_bytes(32)).app_webhook_secret("coop_a", "salt-1")
    assert secret.startswith(WEBHOOK_SECRET_PREFIX)
    body = secret.removeprefix(WEBHOOK_SECRET_PREFIX)
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    assert len(raw) * 8 >= 256
    assert set(body) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_a_new_salt_or_another_app_gives_an_unrelated_secret() -> None:
    vault = vault_with(secrets.token_bytes(32))
    base = vault.app_webhook_secret("coop_a", "salt-1")
    assert vault.app_webhook_secret("coop_a", "salt-2") != base
    assert vault.app_webhook_secret("coop_b", "salt-1") != base
    # Parts are length-prefixed: moving characters between client id and salt changes it.
    assert vault.app_webhook_secret("coop_as", "alt-1") != base


def test_webhook_secret_needs_the_server_secret() -> None:
    """The same stored row (client id, salt) under another server secret yields another
    secret: a copy of the database is not enough to sign notices."""
    a = vault_with(secrets.token_bytes(32)).app_webhook_secret("coop_a", "salt-1")
    b = vault_with(secrets.token_bytes(32)).app_webhook_secret("coop_a", "salt-1")
    assert a != b
