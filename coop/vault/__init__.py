"""The vault: per-member data keys, envelope encryption, blind indexes.

This package is the only place in coop that imports `cryptography`.
"""

from coop.vault.keyring import Keyring, load_keyring, load_secret_key
from coop.vault.service import MemberCipher, RotationReport, Vault

__all__ = [
    "Keyring",
    "MemberCipher",
    "RotationReport",
    "Vault",
    "load_keyring",
    "load_secret_key",
]
