"""Signed deauthorization notices to apps, delivered with retries (see docs/apps.md).

Signature: `Coop-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` over `<t>.<raw body>`, keyed
with the UTF-8 bytes of the app's webhook secret. That secret is derived by the vault from the
server secret and a per-app salt (`Vault.app_webhook_secret`): nothing in the database yields
it. The app recomputes the MAC, compares in constant time and refuses a `t` more than five
minutes away from its clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx

from coop.apps import service as apps
from coop.config import Settings
from coop.connectors.outbound import Guard, Limits, OutboundClient
from coop.consent.models import ScoreNotice
from coop.errors import CoopError
from coop.portability.models import (
    DELIVERY_DELIVERED,
    DELIVERY_FAILED,
    DELIVERY_PENDING,
    WebhookDelivery,
)
from coop.types import utcnow
from coop.vault import Vault

log = logging.getLogger("coop.portability.webhooks")

EVENT = "member.erased"
SIGNATURE_HEADER = "Coop-Signature"
TOLERANCE = 300  # seconds an app should accept between `t` and its own clock
MAX_ATTEMPTS = 8
BASE_DELAY = 30.0  # seconds; attempt n waits uniform(0, min(CAP, BASE * 2**n)): full jitter
CAP_DELAY = 6 * 3600.0
# Seconds a claimed delivery stays hidden from other workers: well beyond one attempt's limits.
CLAIM_LEASE = 300.0
LIMITS = Limits(connect=3.0, read=5.0, total=10.0, max_bytes=64 * 1024)
# Statuses a retry cannot fix: the app told us the request itself is wrong.
PERMANENT = frozenset({400, 401, 403, 404, 405, 410, 413, 422})
# Failures that retrying cannot fix: the app is gone, or the SSRF guard refuses its URL.
PERMANENT_ERRORS = frozenset({"app_gone", "url_not_allowed"})
UNSUPPORTED = "unsupported"
# What this module delivers: deletion notices and score-change notices (same fields).
Delivery = WebhookDelivery | ScoreNotice


def _mac(webhook_secret: str, body: bytes, timestamp: int) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(webhook_secret.encode(), message, hashlib.sha256).hexdigest()


def sign(webhook_secret: str, body: bytes, timestamp: int) -> str:
    """The `Coop-Signature` header value for `body` sent at `timestamp`."""
    return f"t={timestamp},v1={_mac(webhook_secret, body, timestamp)}"


def verify(
    webhook_secret: str, body: bytes, header: str, *, now: int, tolerance: int = TOLERANCE
) -> bool:
    """What an app runs (documented in docs/apps.md); tests use it as the reference."""
    parts = dict(p.strip().split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(_mac(webhook_secret, body, timestamp), parts.get("v1", ""))


def notice_body(
    *, delivery_id: uuid.UUID, ledger_id: uuid.UUID, client_id: str, subject: str, at: datetime
) -> bytes:
    return json.dumps(
        {
            "type": EVENT,
            "id": str(delivery_id),
            "ledger_id": str(ledger_id),
            "client_id": client_id,
            "subject": subject,
            "occurred_at": at.isoformat(),
            "action": "delete every score and record you hold for this subject",
        },
        separators=(",", ":"),
    ).encode()


def backoff(attempt: int, rng: random.Random | None = None) -> float:
    """Full-jitter exponential backoff (AWS architecture blog): uniform(0, min(cap, b*2^n))."""
    return (rng or random).uniform(0, min(CAP_DELAY, BASE_DELAY * 2**attempt))


async def _attempt(
    client: OutboundClient, vault: Vault, delivery: Delivery
) -> tuple[int | None, str]:
    """Send once, signed with the app's current webhook secret: (HTTP status, error code)."""
    app = (await apps.get_apps(ids=[delivery.app_id])).get(delivery.app_id)
    secret = apps.webhook_secret_of(vault, app) if app is not None else None
    if app is None or not app.webhook_url or secret is None or delivery.body is None:
        return None, "app_gone"
    body = bytes(delivery.body)
    header = sign(secret, body, int(utcnow().timestamp()))
    headers = {
        "content-type": "application/json",
        SIGNATURE_HEADER: header,
        "user-agent": "coop-webhooks/1",
    }
    try:
        response = await client.post(app.webhook_url, content=body, headers=headers)
    except CoopError as exc:
        return None, exc.code
    except httpx.TimeoutException:
        return None, "timeout"
    except (httpx.HTTPError, OSError):
        return None, "connection_error"
    return response.status_code, "" if response.is_success else f"http_{response.status_code}"


async def _claim(delivery: Delivery) -> bool:
    """Take `delivery` for one attempt, or learn that another worker already has it.

    A compare-and-set on the row as read: it moves `next_attempt_at` out by `CLAIM_LEASE`, so
    no other worker finds it due (or can claim it) while this attempt runs, and a crash mid-way
    leaves it to be retried once the lease lapses.
    """
    lease = utcnow() + timedelta(seconds=CLAIM_LEASE)
    taken = (
        await type(delivery)
        .filter(
            id=delivery.id,
            status=DELIVERY_PENDING,
            attempts=delivery.attempts,
            next_attempt_at=delivery.next_attempt_at,
        )
        .update(next_attempt_at=lease)
    )
    if taken:
        delivery.next_attempt_at = lease
    return bool(taken)


async def _record(delivery: Delivery, status: int | None, error: str) -> None:
    """Record one attempt as a compare-and-set on the attempt count read before sending: if
    another attempt was recorded meanwhile, its outcome stands and this one is dropped."""
    now = utcnow()
    attempts = delivery.attempts + 1
    changes: dict[str, Any] = {"attempts": attempts, "last_status": status, "last_error": error}
    if status is not None and 200 <= status < 300:
        changes.update(status=DELIVERY_DELIVERED, delivered_at=now)
    elif error in PERMANENT_ERRORS or status in PERMANENT or attempts >= MAX_ATTEMPTS:
        changes["status"] = DELIVERY_FAILED
    else:
        changes["next_attempt_at"] = now + timedelta(seconds=backoff(attempts))
    if changes.get("status", DELIVERY_PENDING) != DELIVERY_PENDING:
        changes.update(body=None, next_attempt_at=None)  # the subject is kept only while pending
    updated = (
        await type(delivery)
        .filter(id=delivery.id, status=DELIVERY_PENDING, attempts=delivery.attempts)
        .update(**changes)
    )
    if not updated:
        log.info(
            "webhook attempt already recorded",
            extra={"delivery": str(delivery.id), "code": "already_recorded"},
        )
        return
    for name, value in changes.items():
        setattr(delivery, name, value)
    log.info("webhook attempt", extra={"delivery": str(delivery.id), "code": error or "ok"})


async def deliver(settings: Settings, vault: Vault, deliveries: Sequence[Delivery]) -> None:
    """One attempt for each delivery this call claims, concurrently, each bounded by the
    client's timeouts. Deliveries another worker claimed or recorded first are skipped.
    Deletion notices and score-change notices (consent.models.ScoreNotice) alike."""
    deliveries = [d for d in deliveries if await _claim(d)]
    if not deliveries:
        return
    async with OutboundClient(Guard.from_settings(settings), LIMITS) as client:
        results = await asyncio.gather(*(_attempt(client, vault, d) for d in deliveries))
    for delivery, (status, error) in zip(deliveries, results, strict=True):
        await _record(delivery, status, error)


async def deliver_due(settings: Settings, vault: Vault, *, limit: int = 50) -> int:
    """Attempt every pending delivery whose time has come. Returns how many were tried."""
    due = (
        await WebhookDelivery.filter(status=DELIVERY_PENDING, next_attempt_at__lte=utcnow())
        .order_by("next_attempt_at")
        .limit(limit)
    )
    await deliver(settings, vault, list(due))
    return len(due)


Job = Callable[[Settings, Vault], Awaitable[int]]


async def run_worker(
    settings: Settings,
    vault: Vault,
    stop: asyncio.Event,
    *,
    interval: float = 15.0,
    jobs: Sequence[Job] = (deliver_due,),
) -> None:
    """Run each job (deliver what is due) every `interval` seconds until `stop` is set."""
    while not stop.is_set():
        try:
            for job in jobs:
                await job(settings, vault)
        except Exception as exc:  # the worker must outlive any single failure
            log.error("webhook worker failed", extra={"code": type(exc).__name__})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
