"""Consent receipts: for each grant, a record of who may read what, why, for how long and
what happened since, signed by the cooperative (Ed25519) and verifiable offline.

The structure follows the Kantara Initiative Consent Receipt Specification v1.1 where it fits
(docs/export.md says where it departs); coop's own facts sit under `coop`. The signature is
over the canonical JSON of `receipt`: keys sorted, no white space, UTF-8 (for these values,
which hold no floating-point numbers, the same bytes as RFC 8785 JCS).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from coop.apps import terms as app_terms
from coop.apps.models import App
from coop.apps.terms import Terms
from coop.consent import service as consent
from coop.consent.models import Grant, GrantEvent
from coop.consent.scopes import describe_scope
from coop.errors import NotFoundError
from coop.types import utcnow
from coop.vault import Vault
from coop.vault.signing import b64url, from_b64url, key_id, verify_signature

KANTARA_VERSION = "KI-CR-v1.1.0"
FORMAT = "coop.consent-receipt"
KEYS_PATH = "/.well-known/coop-receipt-keys"
ALGORITHM = "Ed25519"
COLLECTION_METHOD = (
    "coop consent page (OAuth 2 authorization code flow): the member chose what to share "
    "and for how long, and pressed Allow"
)


def canonical(value: Any) -> bytes:
    """The bytes that are signed: sorted keys, no white space, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _termination(grant: Grant, terms: Terms) -> str:
    ends = (
        f"Access ends {grant.expires_at.isoformat()} unless revoked earlier."
        if grant.expires_at
        else "Access lasts until the member revokes it."
    )
    return f"{ends} {terms.retention_words()}"


def _purposes(grant: Grant, terms: Terms) -> list[dict[str, Any]]:
    """One Kantara purpose per granted scope: the app's words for it, as shown."""
    return [
        {
            "purpose": terms.purpose_for(scope) or "The app has not said why it wants this.",
            "purposeCategory": [],
            "consentType": "EXPLICIT",
            "piiCategory": [describe_scope(scope)],
            "primaryPurpose": index == 0,
            "termination": _termination(grant, terms),
            "thirdPartyDisclosure": False,
            "scope": scope,
        }
        for index, scope in enumerate(grant.scopes)
    ]


def _history(events: list[GrantEvent]) -> list[dict[str, Any]]:
    return [
        {
            "event": e.kind,
            "at": _iso(e.at),
            "scopes": list(e.scopes),
            "reason": e.reason,
            "termsVersion": e.terms_version,
        }
        for e in events
    ]


def _app_identity(app: App) -> dict[str, Any]:
    return {
        "id": str(app.id),
        "clientId": app.client_id,
        "name": app.name,
        "homepage": app.homepage,
        "registeredBy": "a member of this coop" if app.owner_id else "the operator of this coop",
        "registeredAt": _iso(app.created_at),
        "currentTermsVersion": app.terms_version,
    }


def _terms_json(terms: Terms) -> dict[str, Any]:
    return {
        "version": terms.version,
        "purpose": terms.purpose,
        "scorePurposes": dict(terms.score_purposes),
        "retentionDays": terms.retention_days,
        "retention": terms.retention_words(),
        "policyUri": terms.policy_uri,
    }


@dataclass(frozen=True)
class ReceiptFacts:
    grant: Grant
    app: App
    terms: Terms
    events: list[GrantEvent]


def receipt_body(facts: ReceiptFacts, *, issuer: str, public_key: bytes) -> dict[str, Any]:
    """The receipt (unsigned): Kantara v1.1 fields, then coop's own under `coop`."""
    grant, app, terms = facts.grant, facts.app, facts.terms
    return {
        "version": KANTARA_VERSION,
        "jurisdiction": "not stated",
        "consentTimestamp": int(grant.created_at.timestamp()),
        "collectionMethod": COLLECTION_METHOD,
        "consentReceiptID": str(grant.id),
        "publicKey": b64url(public_key),
        "language": "en",
        "piiPrincipalId": str(grant.member_id),
        "piiControllers": [
            {
                "piiController": app.name,
                "contact": app.homepage or "",
                "onBehalf": False,
                "url": app.homepage,
            }
        ],
        "policyUrl": terms.policy_uri,
        "services": [{"service": app.name, "purposes": _purposes(grant, terms)}],
        "sensitive": False,
        "spiCat": [],
        "coop": {
            "format": FORMAT,
            "formatVersion": 1,
            "issuer": issuer,
            "keysUrl": issuer.rstrip("/") + KEYS_PATH,
            "issuedAt": utcnow().isoformat(),
            "app": _app_identity(app),
            "grant": {
                "id": str(grant.id),
                "subject": grant.subject,
                "status": grant.status,
                "pausedByMember": grant.held,
                "waitingForNewTerms": grant.terms_version != app.terms_version,
                "scopes": {scope: describe_scope(scope) for scope in grant.scopes},
                "givenAt": _iso(grant.created_at),
                "expiresAt": _iso(grant.expires_at),
                "endedAt": _iso(grant.ended_at),
            },
            "terms": _terms_json(terms),
            "history": _history(facts.events),
        },
    }


async def _facts(grant: Grant) -> ReceiptFacts:
    app: App = grant.app  # type: ignore[assignment]
    terms = await app_terms.get_terms(app_id=app.id, version=grant.terms_version)
    events = await consent.list_events(member_id=grant.member_id, grant_id=grant.id)
    return ReceiptFacts(grant=grant, app=app, terms=terms, events=events)


async def _sign(vault: Vault, facts: ReceiptFacts, issuer: str) -> dict[str, Any]:
    key = await vault.receipt_key()
    body = receipt_body(facts, issuer=issuer, public_key=key.public)
    return {
        "receipt": body,
        "signature": {
            "alg": ALGORITHM,
            "kid": key.kid,
            "value": b64url(key.sign(canonical(body))),
        },
    }


async def signed_receipt(
    *, vault: Vault, member_id: uuid.UUID, grant_id: uuid.UUID, issuer: str
) -> dict[str, Any]:
    """The member's receipt for one of their grants (any status), signed now."""
    found = await consent.list_grants(member_id=member_id, live_only=False, grant_id=grant_id)
    if not found:
        raise NotFoundError()
    return await _sign(vault, await _facts(found[0]), issuer)


async def signed_receipts(
    *, vault: Vault, member_id: uuid.UUID, issuer: str
) -> AsyncIterator[dict[str, Any]]:
    """A signed receipt for each of the member's grants, oldest first (for the export)."""
    grants = await consent.list_grants(member_id=member_id, live_only=False)
    for grant in reversed(grants):
        yield await _sign(vault, await _facts(grant), issuer)


def receipt_filename(grant_id: uuid.UUID) -> str:
    return f"coop-consent-receipt-{grant_id}.json"


async def key_set(vault: Vault) -> dict[str, Any]:
    """The published receipt keys as a JWK Set (RFC 7517, OKP keys per RFC 8037), the one
    signing now included (published on first use)."""
    await vault.receipt_key()
    return {
        "keys": [
            {
                "kty": "OKP",
                "crv": "Ed25519",
                "x": row.public_key,
                "kid": row.kid,
                "use": "sig",
                "alg": "EdDSA",
                **({"coop_retired_at": row.retired_at.isoformat()} if row.retired_at else {}),
            }
            for row in await Vault.receipt_public_keys()
        ]
    }


# -- offline verification (`coop receipt verify`) --------------------------------------------


class BadReceiptFile(ValueError):
    """The file is not a signed coop consent receipt at all (exit status 2)."""


def _published(keys: dict[str, Any] | None) -> dict[str, bytes] | None:
    if keys is None:
        return None
    try:
        return {
            str(k["kid"]): from_b64url(k["x"])
            for k in keys["keys"]
            if k.get("kty") == "OKP" and k.get("crv") == "Ed25519"
        }
    except (KeyError, TypeError, ValueError):
        raise BadReceiptFile("the key set is not a JWK Set of Ed25519 keys") from None


def _parts(document: Any) -> tuple[dict[str, Any], str, bytes, bytes]:
    """(receipt, kid, public key, signature) of a signed receipt, or BadReceiptFile."""
    try:
        receipt, signature = document["receipt"], document["signature"]
        if not isinstance(receipt, dict) or signature["alg"] != ALGORITHM:
            raise BadReceiptFile("not an Ed25519-signed consent receipt")
        return (
            receipt,
            str(signature["kid"]),
            from_b64url(receipt["publicKey"]),
            from_b64url(signature["value"]),
        )
    except (KeyError, TypeError, ValueError):
        raise BadReceiptFile("not a signed coop consent receipt") from None


def verify_receipt(document: Any, *, keys: dict[str, Any] | None = None) -> tuple[bool, str]:
    """Check one signed receipt: (valid, one line saying why). With `keys` (the published
    JWK Set), the signing key must be one of them; without, the key named in the receipt is
    used, which proves the receipt unchanged but not who signed it."""
    receipt, kid, public, signature = _parts(document)
    published = _published(keys)
    if published is not None:
        if kid not in published:
            return False, f"key {kid} is not in the published key set"
        public = published[kid]
    if key_id(public) != kid:
        return False, f"the receipt's public key is not key {kid}"
    if not verify_signature(public, canonical(receipt), signature):
        return False, "the signature does not match the receipt (changed, or not signed by coop)"
    source = "a published key" if published is not None else "the key named in the receipt"
    return True, f"consent receipt {receipt.get('consentReceiptID')} signed by {kid} ({source})"
