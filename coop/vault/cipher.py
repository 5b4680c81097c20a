"""AES-256-GCM sealing with a versioned header, DEK wrapping, and keyed hashes.

Ciphertext layout (format version 1): `0x01 | nonce (12 bytes) | ciphertext | tag (16 bytes)`.
The associated data is never stored: the caller rebuilds it from where the blob lives, so a
blob copied to another member, table, column or row fails its tag check.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from coop.errors import IntegrityError

FORMAT_V1 = b"\x01"
NONCE_BYTES = 12
KEY_BYTES = 32


def new_key() -> bytes:
    """A fresh random 256-bit key."""
    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return FORMAT_V1 + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


class Opener:
    """Opens blobs sealed under one key. Build it once for many blobs: an AESGCM object costs
    about as much to build as a small blob costs to open."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def open(self, blob: bytes, aad: bytes) -> bytes:
        if len(blob) < 1 + NONCE_BYTES + 16 or blob[:1] != FORMAT_V1:
            raise IntegrityError("Encrypted data has an unknown format.")
        try:
            return self._aead.decrypt(blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :], aad)
        except InvalidTag:
            raise IntegrityError() from None


def open_sealed(key: bytes, blob: bytes, aad: bytes) -> bytes:
    return Opener(key).open(blob, aad)


def derive_key(secret: bytes, purpose: str) -> bytes:
    """Derive an independent subkey of `secret` for one purpose (HKDF-SHA256)."""
    return HKDF(
        algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=purpose.encode()
    ).derive(secret)


def keyed_hash(key: bytes, value: str) -> str:
    """HMAC-SHA256 of `value`, hex: a blind index that reveals nothing without the key."""
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def token_hash(token: str) -> str:
    """SHA-256 of a high-entropy token (tokens are >= 128 random bits, so no key is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()
