"""coop's ES256 keys and JWTs for atproto OAuth, checked by joserfc as a server would."""

from __future__ import annotations

import json
import secrets

import pytest
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet

from coop.vault.jose import EcKey, client_assertion, dpop_proof


def test_the_client_key_is_derived_from_the_secret_and_differs_per_secret() -> None:
    secret = secrets.token_bytes(32)

    same = EcKey.derive(secret, "purpose"), EcKey.derive(secret, "purpose")
    other = EcKey.derive(secrets.token_bytes(32), "purpose")

    assert same[0].kid == same[1].kid
    assert other.kid != same[0].kid
    assert EcKey.derive(secret, "another purpose").kid != same[0].kid


def test_a_published_key_has_no_private_part() -> None:
    key = EcKey.generate()

    public = key.public_jwk()

    assert "d" not in public and "d" not in key.bare_jwk()
    assert (public["kty"], public["crv"], public["alg"], public["kid"]) == (
        "EC",
        "P-256",
        "ES256",
        key.kid,
    )


def test_a_session_key_survives_its_sealed_form() -> None:
    key = EcKey.generate()

    again = EcKey.from_private_jwk(key.private_jwk())

    assert again.kid == key.kid


@pytest.mark.parametrize("text", ["", "{}", '{"kty":"EC"}', "not json", '{"kty":"oct","k":"AA"}'])
def test_anything_but_a_private_p256_key_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        EcKey.from_private_jwk(text)


def test_a_public_key_alone_is_not_a_session_key() -> None:
    with pytest.raises(ValueError):
        EcKey.from_private_jwk(json.dumps(EcKey.generate().bare_jwk()))


def test_a_dpop_proof_verifies_with_the_key_in_its_header() -> None:
    key = EcKey.generate()

    proof = dpop_proof(key, method="GET", url="https://pds.example/xrpc/x", nonce="n1", ath="h")

    header = jws.extract_compact(proof.encode()).headers()
    assert header["typ"] == "dpop+jwt" and header["alg"] == "ES256" and "d" not in header["jwk"]
    claims = jwt.decode(proof, ECKey.import_key(header["jwk"]), algorithms=["ES256"]).claims
    assert (claims["htm"], claims["htu"], claims["nonce"], claims["ath"]) == (
        "GET",
        "https://pds.example/xrpc/x",
        "n1",
        "h",
    )
    assert claims["jti"] and claims["iat"]


def test_a_client_assertion_verifies_with_the_published_key_set_only() -> None:
    key = EcKey.derive(secrets.token_bytes(32), "client")
    assertion = client_assertion(
        key, client_id="https://coop.example/m.json", audience="https://as"
    )

    claims = jwt.decode(
        assertion, KeySet.import_key_set({"keys": [key.public_jwk()]}), algorithms=["ES256"]
    ).claims
    assert claims["iss"] == claims["sub"] == "https://coop.example/m.json"
    assert claims["aud"] == "https://as"
    stranger = KeySet.import_key_set({"keys": [EcKey.generate().public_jwk()]})
    with pytest.raises(JoseError):
        jwt.decode(assertion, stranger, algorithms=["ES256"])
    forged = EcKey.generate().sign({"kid": key.kid}, claims)  # the right kid, another key
    with pytest.raises(JoseError):
        jwt.decode(forged, KeySet.import_key_set({"keys": [key.public_jwk()]}), ["ES256"])
