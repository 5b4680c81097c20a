"""Upstream revocation and signed deauthorization webhooks (ER-03): failures are retried with
backoff, go through the SSRF guard, and never block or roll back the erasure."""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from coop.config import Settings
from coop.connectors import store
from coop.connectors.builtin.github import GitHubApp, GitHubConnector, token_credentials
from coop.connectors.builtin.mastodon import MastodonConnector
from coop.connectors.models import Connection
from coop.connectors.outbound import Limits
from coop.connectors.registry import Registry
from coop.consent.models import Grant
from coop.portability import erase, inventory, webhooks
from coop.portability.models import WebhookDelivery
from coop.types import clock, utcnow
from coop.vault import Vault
from tests.fakes.github import running_github
from tests.fakes.mastodon import running_mastodon
from tests.fakes.server import LiveServer
from tests.portability.factories import make_app, make_person, make_webhook_app

LOOPBACK = (ipaddress.ip_network("127.0.0.1/32"),)


class AppReceiver:
    """A third-party app's webhook endpoint: /ok answers 200, /fail 500 (until healed),
    /slow never answers in time."""

    def __init__(self) -> None:
        self.received: list[tuple[str, bytes, dict[str, str]]] = []
        self.failing = True

    def app(self) -> Starlette:
        async def ok(request: Request) -> Response:
            self.received.append(("ok", await request.body(), dict(request.headers)))
            return JSONResponse({"ok": True})

        async def fail(request: Request) -> Response:
            self.received.append(("fail", await request.body(), dict(request.headers)))
            return Response(status_code=500 if self.failing else 204)

        async def slow(request: Request) -> Response:
            self.received.append(("slow", await request.body(), dict(request.headers)))
            await asyncio.sleep(3)
            return Response(status_code=200)

        return Starlette(
            routes=[
                Route("/ok", ok, methods=["POST"]),
                Route("/fail", fail, methods=["POST"]),
                Route("/slow", slow, methods=["POST"]),
            ]
        )


@pytest.fixture
def receiver() -> Iterator[tuple[AppReceiver, LiveServer]]:
    fake = AppReceiver()
    with LiveServer(fake.app()) as server:
        yield fake, server


@pytest.fixture
def fast_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webhooks, "LIMITS", Limits(connect=0.5, read=0.5, total=1.0))


async def test_apps_get_signed_notices_and_failures_never_block_the_erasure(
    db: str, vault: Vault, settings: Settings, receiver: Any, fast_timeouts: None
) -> None:
    fake, server = receiver
    allowed = dataclasses.replace(settings, outbound_allow=LOOPBACK)
    good = await make_webhook_app(vault, "Good app", server.url("/ok"))
    ok_id, ok_secret = good.app.id, good.webhook_secret
    assert ok_secret is not None
    fail_id, _ = await make_app(vault, "Broken app", server.url("/fail"))
    slow_id, _ = await make_app(vault, "Slow app", server.url("/slow"))
    silent_id, _ = await make_app(vault, "Silent app")
    person = await make_person(vault, settings, app_ids=[ok_id, fail_id, slow_id, silent_id])
    subject = (await Grant.get(member_id=person.member_id, app_id=ok_id)).subject

    result = await erase.erase_member(vault=vault, settings=allowed, member_id=person.member_id)

    assert await inventory.count_rows(person.member_id) == {}
    status = {a.app: (a.status, a.last_error) for a in result.receipt.apps}
    assert status == {
        "Good app": ("delivered", ""),
        "Broken app": ("pending", "http_500"),
        "Slow app": ("pending", "timeout"),
        "Silent app": ("unsupported", ""),
    }
    _, body, headers = next(r for r in fake.received if r[0] == "ok")
    now = int(utcnow().timestamp())
    assert webhooks.verify(ok_secret, body, headers["coop-signature"], now=now)
    assert not webhooks.verify("another secret", body, headers["coop-signature"], now=now)
    assert not webhooks.verify(ok_secret, body + b" ", headers["coop-signature"], now=now)
    assert not webhooks.verify(ok_secret, body, headers["coop-signature"], now=now + 3600)
    payload = __import__("json").loads(body)
    assert payload["type"] == "member.erased" and payload["subject"] == subject
    assert str(person.member_id) not in body.decode() and person.canary not in body.decode()
    delivered = await WebhookDelivery.get(app_id=ok_id)
    assert delivered.body is None  # the subject is gone once delivered

    # Retries: nothing is due before the backoff; after it, the healed app gets the notice.
    assert await webhooks.deliver_due(allowed, vault) == 0
    fake.failing = False
    clock.advance(webhooks.CAP_DELAY + 1)
    assert await webhooks.deliver_due(allowed, vault) == 2
    healed = await WebhookDelivery.get(app_id=fail_id)
    assert (healed.status, healed.attempts) == ("delivered", 2)


async def test_a_notice_that_keeps_failing_is_given_up_and_forgotten(
    db: str, vault: Vault, settings: Settings, receiver: Any, fast_timeouts: None
) -> None:
    _, server = receiver
    allowed = dataclasses.replace(settings, outbound_allow=LOOPBACK)
    fail_id, _ = await make_app(vault, "Broken app", server.url("/fail"))
    person = await make_person(vault, settings, app_ids=[fail_id])
    await erase.erase_member(vault=vault, settings=allowed, member_id=person.member_id)
    for _ in range(webhooks.MAX_ATTEMPTS):
        clock.advance(webhooks.CAP_DELAY + 1)
        await webhooks.deliver_due(allowed, vault)
    delivery = await WebhookDelivery.get(app_id=fail_id)
    assert delivery.status == "failed" and delivery.attempts == webhooks.MAX_ATTEMPTS
    assert delivery.body is None and delivery.next_attempt_at is None


async def test_webhook_urls_go_through_the_ssrf_guard(
    db: str, vault: Vault, settings: Settings, receiver: Any
) -> None:
    fake, server = receiver
    app_id, _ = await make_app(vault, "Internal app", server.url("/ok"))
    person = await make_person(vault, settings, app_ids=[app_id])
    result = await erase.erase_member(vault=vault, settings=settings, member_id=person.member_id)
    assert [(a.status, a.last_error) for a in result.receipt.apps] == [
        ("failed", "url_not_allowed")
    ]
    assert fake.received == []


def test_backoff_is_full_jitter_and_capped() -> None:
    import random

    rng = random.Random(7)
    for attempt in range(12):
        ceiling = min(webhooks.CAP_DELAY, webhooks.BASE_DELAY * 2**attempt)
        values = [webhooks.backoff(attempt, rng) for _ in range(200)]
        assert all(0 <= v <= ceiling for v in values)
        assert min(values) < ceiling * 0.1 and max(values) > ceiling * 0.9


async def _connect(
    vault: Vault,
    member_id: uuid.UUID,
    connector: str,
    config: dict[str, str],
    credentials: dict[str, str],
) -> None:
    cipher = await vault.cipher_for(member_id)
    connection_id = uuid.uuid4()
    await Connection.create(
        id=connection_id,
        member_id=member_id,
        connector=connector,
        config_sealed=store.seal_field(cipher, connection_id, "config_sealed", config),
        credentials_sealed=store.seal_field(
            cipher, connection_id, "credentials_sealed", credentials
        ),
        created_at=utcnow(),
    )


async def test_upstream_tokens_are_revoked_and_a_failing_provider_does_not_block(
    db: str, vault: Vault, settings: Settings
) -> None:
    allowed = dataclasses.replace(settings, outbound_allow=LOOPBACK)
    person = await make_person(vault, settings, connectors=())
    with running_mastodon() as good, running_mastodon() as bad, running_github() as hub:
        registry = Registry(
            {
                "mastodon": MastodonConnector(),
                "github": GitHubConnector(
                    GitHubApp(hub.client_id, hub.client_secret, base_url=hub.url, api_url=hub.url)
                ),
            }
        )
        bad.fail_next(500, path="/oauth/revoke")
        refused = ""
        for fake in (good, bad):
            app, access = fake.issue_token()
            refused = access
            await _connect(
                vault,
                person.member_id,
                "mastodon",
                {"instance": fake.url},
                {
                    "access_token": access,
                    "client_id": app.client_id,
                    "client_secret": app.client_secret,
                },
            )
        token = hub.issue_token()
        await _connect(
            vault,
            person.member_id,
            "github",
            {},
            token_credentials(
                {
                    "access_token": token.access,
                    "refresh_token": token.refresh,
                    "expires_in": 28800,
                    "refresh_token_expires_in": 15897600,
                }
            ),
        )

        result = await erase.erase_member(
            vault=vault, settings=allowed, member_id=person.member_id, registry=registry
        )

        assert good.live_tokens() == []
        assert len(good.log.to("/oauth/revoke", "POST")) == 1
        assert len(bad.log.to("/oauth/revoke", "POST")) == 1
        assert refused in bad.live_tokens()  # it refused: the erasure went on regardless
        assert len(hub.log.to(f"/applications/{hub.client_id}/grant", "DELETE")) == 1
        assert hub.live_tokens() == []
    assert await inventory.count_rows(person.member_id) == {}
    assert sorted(u["connector"] for u in result.receipt.upstream) == [
        "github",
        "mastodon",
        "mastodon",
    ]


async def test_the_worker_leaves_a_new_notice_to_the_erasure_in_flight(
    db: str, vault: Vault, settings: Settings, receiver: Any
) -> None:
    fake, server = receiver
    allowed = dataclasses.replace(settings, outbound_allow=LOOPBACK)
    app_id, _ = await make_app(vault, "Good app", server.url("/ok"))
    person = await make_person(vault, settings, app_ids=[app_id])
    due_during: list[int] = []

    async def worker_runs(step: str) -> None:
        if step == "upstream":  # still revoking and purging: the first attempt is not made yet
            due_during.append(await webhooks.deliver_due(allowed, vault))

    result = await erase.erase_member(
        vault=vault, settings=allowed, member_id=person.member_id, after_step=worker_runs
    )

    assert due_during == [0]
    assert [(a.status, a.last_error) for a in result.receipt.apps] == [("delivered", "")]
    assert [r[0] for r in fake.received] == ["ok"]


async def erased_before_notifying(
    vault: Vault, settings: Settings, server: Any
) -> tuple[Settings, Any]:
    """An erasure killed right after the purge, before its notice went out: one pending
    delivery to the receiver's /ok. Returns the settings that allow loopback, and the app."""
    allowed = dataclasses.replace(settings, outbound_allow=LOOPBACK)
    app_id, _ = await make_app(vault, "Good app", server.url("/ok"))
    person = await make_person(vault, settings, app_ids=[app_id])

    async def killed_before_notifying(step: str) -> None:
        if step == "purged":
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        await erase.erase_member(
            vault=vault,
            settings=allowed,
            member_id=person.member_id,
            after_step=killed_before_notifying,
        )
    return allowed, app_id


async def test_two_concurrent_deliveries_of_a_due_notice_post_it_once(
    db: str, vault: Vault, settings: Settings, receiver: Any
) -> None:
    fake, server = receiver
    allowed, app_id = await erased_before_notifying(vault, settings, server)
    clock.advance(webhooks.BASE_DELAY + 1)

    await asyncio.gather(webhooks.deliver_due(allowed, vault), webhooks.deliver_due(allowed, vault))

    assert [r[0] for r in fake.received] == ["ok"]
    delivery = await WebhookDelivery.get(app_id=app_id)
    assert (delivery.status, delivery.attempts, delivery.body) == ("delivered", 1, None)
    assert delivery.next_attempt_at is None


async def test_a_stale_failure_never_overwrites_a_recorded_delivery(
    db: str, vault: Vault, settings: Settings, receiver: Any
) -> None:
    _, server = receiver
    allowed, app_id = await erased_before_notifying(vault, settings, server)
    stale = await WebhookDelivery.get(app_id=app_id)
    await webhooks.deliver(allowed, vault, [await WebhookDelivery.get(app_id=app_id)])

    await webhooks._record(stale, 500, "http_500")  # a slower attempt, read before the first

    delivery = await WebhookDelivery.get(app_id=app_id)
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("delivered", 1, "")
    assert delivery.body is None and delivery.next_attempt_at is None
