"""Ed25519 signatures for consent receipts: the cooperative signs, anyone verifies offline.

Keys are derived (HKDF-SHA256) from the server secret and a generation number, so no private
key is ever stored; `coop receipt rotate-key` moves to the next generation, and the public
keys of every generation stay published so older receipts keep verifying.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from coop.vault import cipher

PUBLIC_BYTES = 32
SIGNATURE_BYTES = 64


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def from_b64url(text: str) -> bytes:
    """Decode base64url (padding optional); ValueError on anything else."""
    if not isinstance(text, str) or not text.isascii():
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_id(public: bytes) -> str:
    """A short, stable name for a public key (its fingerprint)."""
    return "r-" + hashlib.sha256(b"coop-receipt-key|" + public).hexdigest()[:16]


@dataclass(frozen=True)
class SigningKey:
    """One generation's Ed25519 key pair; the private half never leaves this object."""

    generation: int
    public: bytes
    _private: Ed25519PrivateKey = field(repr=False, compare=False)

    @property
    def kid(self) -> str:
        return key_id(self.public)

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)


def derive_signing_key(secret: bytes, generation: int) -> SigningKey:
    seed = cipher.derive_key(secret, f"coop receipt signing v1|{generation}")
    private = Ed25519PrivateKey.from_private_bytes(seed)
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return SigningKey(generation=generation, public=public, _private=private)


def verify_signature(public: bytes, message: bytes, signature: bytes) -> bool:
    """Whether `signature` is `public`'s Ed25519 signature of `message` (False on bad input)."""
    if len(public) != PUBLIC_BYTES or len(signature) != SIGNATURE_BYTES:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
