"""Consent receipts (issue 20, part 2): downloadable per grant, signed by the cooperative with
an Ed25519 key whose public half is published, verifiable offline by `coop receipt verify`."""

from __future__ import annotations

import copy
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from coop.apps import service as apps
from coop.apps.terms import validate_terms
from coop.config import Settings
from coop.consent import grants
from coop.members.models import Member
from coop.portability.consent_receipts import canonical, verify_receipt
from coop.vault import Vault, load_keyring
from coop.vault.signing import b64url, derive_signing_key
from tests.apps import test_pages as member_pages
from tests.consent.conftest import issue
from tests.oauth.support import csrf_from, make_member, register

pytestmark = pytest.mark.usefixtures("db")
member, browser = member_pages.member, member_pages.browser  # a logged-in member
PROMISES = validate_terms(
    purpose="To rank your posts.",
    score_purposes={"reach": "To place you on the leaderboard."},
    retention_days=30,
    policy_uri="https://ranker.example/privacy",
)


async def _receipt(browser: httpx.AsyncClient, grant_id: object) -> dict[str, Any]:
    response = await browser.get(f"/apps/grants/{grant_id}/receipt")
    assert response.status_code == 200
    assert response.headers["content-disposition"].startswith("attachment;")
    body: dict[str, Any] = response.json()
    return body


async def test_receipt_says_who_what_why_how_long_and_what_happened(
    browser: httpx.AsyncClient, vault: Vault, member: Member
) -> None:
    reg = await register(vault, name="Ranker", terms=PROMISES)
    item = await issue(member.id, reg, scopes=["profile", "score:reach"], lifetime="1y")
    await grants.narrow_grant(member_id=member.id, grant_id=item.grant.id, scopes=["score:reach"])
    await grants.pause_grant(member_id=member.id, grant_id=item.grant.id)
    await grants.revoke_grant(member_id=member.id, grant_id=item.grant.id)

    doc = await _receipt(browser, item.grant.id)
    receipt = doc["receipt"]
    assert receipt["version"] == "KI-CR-v1.1.0"
    assert receipt["consentReceiptID"] == str(item.grant.id)
    assert receipt["piiControllers"][0]["piiController"] == "Ranker"
    assert receipt["policyUrl"] == "https://ranker.example/privacy"
    (purpose,) = receipt["services"][0]["purposes"]  # narrowed to one scope
    assert purpose["scope"] == "score:reach"
    assert purpose["purpose"] == "To place you on the leaderboard."
    assert "at most 30 days" in purpose["termination"]
    coop = receipt["coop"]
    assert coop["app"]["clientId"] == reg.app.client_id
    assert coop["app"]["registeredBy"] == "the operator of this coop"
    assert coop["terms"]["version"] == 1 and coop["terms"]["retentionDays"] == 30
    assert coop["grant"]["status"] == "revoked" and coop["grant"]["expiresAt"]
    events = [e["event"] for e in coop["history"]]
    assert events == ["created", "narrowed", "paused", "revoked"]
    ok, why = verify_receipt(doc)
    assert ok and str(item.grant.id) in why


async def test_receipt_verifies_against_the_published_keys_and_tampering_fails(
    browser: httpx.AsyncClient, vault: Vault, member: Member
) -> None:
    item = await issue(member.id, await register(vault, terms=PROMISES))
    doc = await _receipt(browser, item.grant.id)
    keys = (await browser.get("/.well-known/coop-receipt-keys")).json()
    (jwk,) = keys["keys"]
    assert jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519" and jwk["kid"] == doc["signature"]["kid"]
    assert verify_receipt(doc, keys=keys)[0]

    tampered = copy.deepcopy(doc)
    tampered["receipt"]["services"][0]["purposes"][0]["purpose"] = "Anything it likes."
    ok, why = verify_receipt(tampered, keys=keys)
    assert not ok and "does not match" in why

    # a receipt re-signed with another key fails against the published set
    other = derive_signing_key(b"another cooperative's secret!!!", 1)
    forged = copy.deepcopy(doc)
    key = other
    forged["receipt"]["publicKey"] = b64url(key.public)
    forged["signature"] = {
        "alg": "Ed25519",
        "kid": key.kid,
        "value": b64url(key.sign(canonical(forged["receipt"]))),
    }
    assert verify_receipt(forged)[0]  # consistent with itself...
    ok, why = verify_receipt(forged, keys=keys)
    assert not ok and "not in the published key set" in why  # ...but not the coop's


async def test_rotation_publishes_a_new_key_and_old_receipts_still_verify(
    browser: httpx.AsyncClient, vault: Vault, member: Member
) -> None:
    item = await issue(member.id, await register(vault))
    old = await _receipt(browser, item.grant.id)
    new_key = await vault.rotate_receipt_key()
    fresh = await _receipt(browser, item.grant.id)
    assert fresh["signature"]["kid"] == new_key.kid != old["signature"]["kid"]
    keys = (await browser.get("/.well-known/coop-receipt-keys")).json()
    assert [k["kid"] for k in keys["keys"]] == [old["signature"]["kid"], new_key.kid]
    assert "coop_retired_at" in keys["keys"][0]
    assert verify_receipt(old, keys=keys)[0] and verify_receipt(fresh, keys=keys)[0]


async def test_another_members_grant_has_no_receipt(
    browser: httpx.AsyncClient, vault: Vault
) -> None:
    someone = await make_member(vault)
    item = await issue(someone.id, await register(vault))
    assert (await browser.get(f"/apps/grants/{item.grant.id}/receipt")).status_code == 404
    assert (await browser.get("/apps/grants/not-a-uuid/receipt")).status_code == 404


async def test_the_export_holds_a_signed_receipt_per_grant(
    browser: httpx.AsyncClient, vault: Vault, member: Member
) -> None:
    first = await issue(member.id, await register(vault, name="One"))
    second = await issue(member.id, await register(vault, name="Two", terms=PROMISES))
    await apps.change_terms(terms=validate_terms(purpose="New."), app_id=second.reg.app.id)
    page = await browser.get("/account/export")
    response = await browser.post(
        "/account/export",
        data={"csrf_token": csrf_from(page.text)},
        headers={"Sec-Fetch-Site": "same-origin"},
    )
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    receipts = json.loads(archive.read("consent_receipts.json"))
    assert [r["receipt"]["consentReceiptID"] for r in receipts] == [
        str(first.grant.id),
        str(second.grant.id),
    ]
    assert receipts[1]["receipt"]["coop"]["grant"]["waitingForNewTerms"] is True
    assert all(verify_receipt(r)[0] for r in receipts)


# -- `coop receipt verify FILE`: exit 0 valid / 1 invalid / 2 bad input ---------------------


def verify_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COOP_")}
    return subprocess.run(
        [sys.executable, "-m", "coop", "receipt", "verify", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_receipt_verify_cli_contract(
    browser: httpx.AsyncClient, vault: Vault, member: Member, tmp_path: Path
) -> None:
    item = await issue(member.id, await register(vault, terms=PROMISES))
    doc = await _receipt(browser, item.grant.id)
    keys = (await browser.get("/.well-known/coop-receipt-keys")).json()
    good, keyfile = tmp_path / "receipt.json", tmp_path / "keys.json"
    good.write_text(json.dumps(doc))
    keyfile.write_text(json.dumps(keys))

    valid = verify_cli(str(good), "--keys", str(keyfile))
    assert valid.returncode == 0, valid.stderr
    assert valid.stdout.startswith("valid: consent receipt") and valid.stdout.count("\n") == 1

    doc["receipt"]["coop"]["grant"]["expiresAt"] = None  # "forever", say
    bad = tmp_path / "tampered.json"
    bad.write_text(json.dumps(doc))
    invalid = verify_cli(str(bad))
    assert invalid.returncode == 1
    assert invalid.stdout.startswith("invalid:") and invalid.stdout.count("\n") == 1

    for content in ("not json", json.dumps({"receipt": 1}), json.dumps([])):
        junk = tmp_path / "junk.json"
        junk.write_text(content)
        answer = verify_cli(str(junk))
        assert answer.returncode == 2, content
        assert answer.stderr.count("\n") == 1 and answer.stderr.startswith("coop: ")
    missing = verify_cli(str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1


async def test_receipt_keys_survive_a_server_secret_change(
    settings: Settings, vault: Vault
) -> None:
    first = await vault.receipt_key()
    changed = Vault(load_keyring(settings), b"another server secret of 32+ bytes!!")
    second = await changed.receipt_key()
    assert second.generation == first.generation + 1 and second.kid != first.kid
    assert [k.kid for k in await Vault.receipt_public_keys()] == [first.kid, second.kid]
    assert (await changed.receipt_key()).kid == second.kid  # stable from then on
