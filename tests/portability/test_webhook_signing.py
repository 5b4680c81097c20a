"""Deauthorization notices are signed with a per-app webhook secret that only the server can
derive: the secret shown at registration verifies them, nothing in the database does."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import ipaddress
import json
import logging
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from coop.apps import service as apps
from coop.apps.models import App
from coop.config import Settings
from coop.portability import erase, webhooks
from coop.types import clock, utcnow
from coop.vault import Vault
from tests.fakes.server import LiveServer
from tests.portability.factories import make_person, make_webhook_app

LOOPBACK = (ipaddress.ip_network("127.0.0.1/32"),)

Notice = tuple[bytes, dict[str, str]]


class Receiver:
    """An app's webhook endpoint that keeps every notice (body and headers)."""

    def __init__(self) -> None:
        self.notices: list[Notice] = []
        self.status = 200

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            self.notices.append((await request.body(), dict(request.headers)))
            return Response(status_code=self.status)

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    fake = Receiver()
    with LiveServer(fake.app()) as server:
        yield fake, server.url("/hook")


@pytest.fixture
def allowed(settings: Settings) -> Settings:
    return dataclasses.replace(settings, outbound_allow=LOOPBACK)


def now() -> int:
    return int(utcnow().timestamp())


async def erase_one_holder(
    vault: Vault, settings: Settings, allowed: Settings, app: apps.RegisteredApp
) -> None:
    person = await make_person(vault, settings, app_ids=[app.app.id], connectors=())
    await erase.erase_member(vault=vault, settings=allowed, member_id=person.member_id)


async def test_notice_verifies_with_the_webhook_secret_shown_at_registration(
    db: str, vault: Vault, settings: Settings, allowed: Settings, receiver: tuple[Receiver, str]
) -> None:
    fake, url = receiver
    registered = await make_webhook_app(vault, "Ranker", url)
    secret = registered.client_information()["webhook_secret"]
    await erase_one_holder(vault, settings, allowed, registered)

    [(body, headers)] = fake.notices
    header = headers["coop-signature"]
    assert headers["content-type"] == "application/json"
    assert webhooks.verify(secret, body, header, now=now())
    assert json.loads(body)["client_id"] == registered.app.client_id


async def test_nothing_but_the_webhook_secret_verifies_a_notice(
    db: str, vault: Vault, settings: Settings, allowed: Settings, receiver: tuple[Receiver, str]
) -> None:
    """What a database copy holds (the client secret's hash, the salt, the client id) cannot
    sign a notice, and neither can the client secret itself."""
    fake, url = receiver
    registered = await make_webhook_app(vault, "Ranker", url)
    assert registered.client_secret and registered.webhook_secret
    await erase_one_holder(vault, settings, allowed, registered)
    [(body, headers)] = fake.notices
    header = headers["coop-signature"]
    row = await App.get(id=registered.app.id)
    assert row.secret_hash and row.webhook_salt

    for wrong in (registered.client_secret, row.secret_hash, row.webhook_salt, row.client_id):
        assert not webhooks.verify(wrong, body, header, now=now())
    # The old scheme (key = the 32 bytes of the stored hash) does not produce this MAC either.
    timestamp, mac = header.removeprefix("t=").split(",v1=")
    old = hmac.new(bytes.fromhex(row.secret_hash), f"{timestamp}.".encode() + body, "sha256")
    assert not hmac.compare_digest(old.hexdigest(), mac)


async def test_a_changed_body_or_an_old_timestamp_fails_verification(
    db: str, vault: Vault, settings: Settings, allowed: Settings, receiver: tuple[Receiver, str]
) -> None:
    fake, url = receiver
    registered = await make_webhook_app(vault, "Ranker", url)
    secret = registered.webhook_secret
    assert secret
    await erase_one_holder(vault, settings, allowed, registered)
    [(body, headers)] = fake.notices
    header = headers["coop-signature"]
    sent_at = int(header.split(",")[0].removeprefix("t="))

    forged = json.dumps({**json.loads(body), "subject": "someone else"}).encode()
    assert not webhooks.verify(secret, forged, header, now=now())
    assert not webhooks.verify(secret, body + b" ", header, now=now())
    # Within the tolerance either way it verifies, outside it never does.
    assert webhooks.verify(secret, body, header, now=sent_at + webhooks.TOLERANCE)
    assert not webhooks.verify(secret, body, header, now=sent_at + webhooks.TOLERANCE + 1)
    assert not webhooks.verify(secret, body, header, now=sent_at - webhooks.TOLERANCE - 1)
    # Re-dating the header without the secret breaks the MAC.
    redated = header.replace(f"t={sent_at}", f"t={now() + 60}")
    assert not webhooks.verify(secret, body, redated, now=now() + 60)
    for garbage in ("", "t=x,v1=00", f"t={sent_at}", f"v1={header.split('v1=')[1]}"):
        assert not webhooks.verify(secret, body, garbage, now=now())


async def test_a_public_client_with_a_webhook_url_receives_a_signed_notice(
    db: str, vault: Vault, settings: Settings, allowed: Settings, receiver: tuple[Receiver, str]
) -> None:
    fake, url = receiver
    registered = await make_webhook_app(vault, "Native app", url, public=True)
    assert registered.client_secret is None and registered.webhook_secret
    person = await make_person(vault, settings, app_ids=[registered.app.id], connectors=())
    result = await erase.erase_member(vault=vault, settings=allowed, member_id=person.member_id)

    assert [(a.app, a.status) for a in result.receipt.apps] == [("Native app", "delivered")]
    [(body, headers)] = fake.notices
    assert webhooks.verify(registered.webhook_secret, body, headers["coop-signature"], now=now())


async def test_rotation_invalidates_the_old_secret_even_for_pending_retries(
    db: str, vault: Vault, settings: Settings, allowed: Settings, receiver: tuple[Receiver, str]
) -> None:
    fake, url = receiver
    registered = await make_webhook_app(vault, "Ranker", url)
    old = registered.webhook_secret
    assert old
    fake.status = 503  # the first attempt fails: a retry is pending when the secret rotates
    await erase_one_holder(vault, settings, allowed, registered)
    new = await apps.rotate_webhook_secret(vault=vault, client_id=registered.app.client_id)

    fake.status = 200
    clock.advance(webhooks.CAP_DELAY + 1)
    assert await webhooks.deliver_due(allowed, vault) == 1
    (first_body, first), (body, retry) = fake.notices
    assert first_body == body  # a retry carries the same body (and id)
    assert webhooks.verify(old, body, first["coop-signature"], now=now() - webhooks.CAP_DELAY)
    assert webhooks.verify(new, body, retry["coop-signature"], now=now())
    assert not webhooks.verify(old, body, retry["coop-signature"], now=now())


async def test_the_webhook_secret_never_reaches_the_logs(
    db: str,
    vault: Vault,
    settings: Settings,
    allowed: Settings,
    receiver: tuple[Receiver, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake, url = receiver
    caplog.set_level(logging.DEBUG)
    registered = await make_webhook_app(vault, "Ranker", url)
    rotated = await apps.rotate_webhook_secret(vault=vault, client_id=registered.app.client_id)
    await erase_one_holder(vault, settings, allowed, registered)
    assert fake.notices and caplog.records

    logged = "\n".join(f"{r.getMessage()} {vars(r)!r}" for r in caplog.records)
    for secret in (registered.webhook_secret, rotated):
        assert secret
        assert secret not in logged
        assert secret.removeprefix("coop_whsec_") not in logged
        assert hashlib.sha256(secret.encode()).hexdigest() not in logged
    [(_, headers)] = fake.notices
    assert headers["coop-signature"] not in logged
