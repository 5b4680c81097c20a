"""ES256 keys and signed JWTs for coop as an AT Protocol OAuth client, through joserfc.

Two kinds of key (atproto.com/specs/oauth):
- the client key, which signs `private_key_jwt` client assertions (RFC 7523 §2.2) and is
  published in coop's JWK set: derived from the server secret like the receipt keys, so no
  private key is stored and every process derives the same one;
- one DPoP key per upstream session (RFC 9449), generated at random when the member starts
  connecting and kept (sealed) with that session's tokens, never shared between sessions.

joserfc (by Authlib's author) rather than `authlib.jose`, which Authlib 1.6+ deprecates in its
favour (and warns on import, an error in coop's strict test runs).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc import jwt
from joserfc.jwk import ECKey

ALG = "ES256"
# FIPS 186-5 §A.2.1 ("key pair generation using extra random bits"): 64 bits more than the
# order's 256, reduced into [1, n-1], so the derived scalar is uniform enough.
_SEED_BYTES = 40
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


@dataclass(frozen=True)
class EcKey:
    """A P-256 key pair; the private half is shown only by `private_jwk()` (to be sealed)."""

    _key: ECKey = field(repr=False, compare=False)

    @classmethod
    def generate(cls) -> EcKey:
        return cls(ECKey.generate_key("P-256", private=True))

    @classmethod
    def derive(cls, secret: bytes, purpose: str) -> EcKey:
        seed = HKDF(
            algorithm=hashes.SHA256(), length=_SEED_BYTES, salt=None, info=purpose.encode()
        ).derive(secret)
        scalar = int.from_bytes(seed, "big") % (_P256_ORDER - 1) + 1
        return cls(ECKey.import_key(ec.derive_private_key(scalar, ec.SECP256R1())))

    @classmethod
    def from_private_jwk(cls, text: str) -> EcKey:
        """The key `private_jwk()` wrote; ValueError on anything else."""
        try:
            data = json.loads(text)
            key = ECKey.import_key(data)
        except Exception:  # joserfc raises several error types for malformed keys
            raise ValueError("not an EC private key") from None
        if data.get("crv") != "P-256" or not data.get("d"):
            raise ValueError("not a P-256 private key")
        return cls(key)

    def private_jwk(self) -> str:
        return json.dumps(self._key.as_dict(private=True), sort_keys=True)

    @property
    def kid(self) -> str:
        """The JWK thumbprint (RFC 7638): a stable name for the public key."""
        return str(self._key.thumbprint())

    def bare_jwk(self) -> dict[str, Any]:
        """The public key alone (what a DPoP proof's header carries)."""
        return dict(self._key.as_dict(private=False))

    def public_jwk(self) -> dict[str, Any]:
        """The public key as a JWK set publishes it."""
        return {**self.bare_jwk(), "kid": self.kid, "use": "sig", "alg": ALG}

    def sign(self, header: dict[str, Any], claims: dict[str, Any]) -> str:
        return jwt.encode({**header, "alg": ALG}, claims, self._key, algorithms=[ALG])


def client_assertion(key: EcKey, *, client_id: str, audience: str) -> str:
    """A `private_key_jwt` client assertion (RFC 7523 §3) for one request to `audience`."""
    now = int(time.time())
    return key.sign(
        {"kid": key.kid},
        {
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "jti": secrets.token_urlsafe(24),
            "iat": now,
            "exp": now + 60,
        },
    )


def dpop_proof(
    key: EcKey, *, method: str, url: str, nonce: str | None, ath: str | None = None
) -> str:
    """A DPoP proof (RFC 9449 §4.2) for one request; `url` without query or fragment."""
    claims: dict[str, Any] = {
        "jti": secrets.token_urlsafe(24),
        "htm": method,
        "htu": url,
        "iat": int(time.time()),
    }
    if nonce:
        claims["nonce"] = nonce
    if ath:
        claims["ath"] = ath
    return key.sign({"typ": "dpop+jwt", "jwk": key.bare_jwk()}, claims)


__all__ = ["ALG", "EcKey", "client_assertion", "dpop_proof"]
