"""Score-change notices (issue 20, part 3): queued when a new score is stored (scoring never
waits), signed like the deletion notices, retried with backoff against a real loopback
receiver that fails first, logged as "notified", and never sent once the grant is revoked,
paused or expired."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pytest

from coop.apps import service as apps
from coop.apps.service import RegisteredApp
from coop.config import Settings
from coop.consent import grants, notices
from coop.consent.models import AccessLogEntry, ScoreNotice
from coop.errors import InvalidClientMetadataError
from coop.jobs.scoring import ScoringFlow
from coop.members.models import Member
from coop.portability import webhooks
from coop.portability.notices import deliver_due_notices
from coop.scoring import service as scoring
from coop.types import clock, utcnow
from coop.vault import Vault
from tests.api import conftest as api_fixtures
from tests.consent.conftest import issue
from tests.fakes.server import LiveServer
from tests.oauth.support import make_member
from tests.portability.test_notify import LOOPBACK, AppReceiver

pytestmark = pytest.mark.usefixtures("db")
flow = api_fixtures.flow


@pytest.fixture
def receiver() -> Iterator[tuple[AppReceiver, LiveServer]]:
    fake = AppReceiver()
    with LiveServer(fake.app()) as server:
        yield fake, server


@pytest.fixture
def allowed(settings: Settings) -> Settings:
    return dataclasses.replace(settings, outbound_allow=LOOPBACK)


async def _app(vault: Vault, url: str, *, notices_on: bool = True) -> RegisteredApp:
    return await apps.create_app(
        name="Watcher",
        redirect_uris=["https://watcher.example/cb"],
        webhook_url=url,
        score_notices=notices_on,
        vault=vault,
    )


async def _scored_member(vault: Vault, flow: ScoringFlow) -> Member:
    member = await make_member(vault)
    await scoring.enable_scorer(member_id=member.id, meta=flow.runner.meta("reach"))
    return member


async def test_a_new_score_queues_a_notice_sent_later_with_retries_and_logged(
    vault: Vault, allowed: Settings, flow: ScoringFlow, receiver: Any
) -> None:
    fake, server = receiver
    watcher = await _app(vault, server.url("/fail"))
    quiet = await _app(vault, server.url("/ok"), notices_on=False)
    member = await _scored_member(vault, flow)
    granted = await issue(member.id, watcher, scopes=["score:reach"])
    await issue(member.id, quiet, scopes=["score:reach"])

    outcomes = await flow.recompute_member(member_id=member.id)
    assert [o.status for o in outcomes] == [scoring.STORED]
    assert fake.received == []  # queued, not sent inline
    (notice,) = await ScoreNotice.all()
    assert notice.app_id == watcher.app.id and notice.status == "pending"

    assert await deliver_due_notices(allowed, vault) == 1
    ((kind, body, headers),) = fake.received
    assert kind == "fail"
    secret = watcher.webhook_secret
    assert secret is not None
    now = int(utcnow().timestamp())
    assert webhooks.verify(secret, body, headers["coop-signature"], now=now)
    sent = json.loads(body)
    assert set(sent) == {"type", "id", "client_id", "subject", "score", "changed_at", "action"}
    assert sent["type"] == "score.changed" and sent["score"] == "reach"
    assert sent["subject"] == granted.grant.subject and sent["client_id"] == watcher.app.client_id
    notice = await ScoreNotice.get(id=notice.id)
    assert notice.status == "pending" and notice.attempts == 1 and notice.last_status == 500
    assert notice.next_attempt_at is not None
    assert not await AccessLogEntry.filter(resource__startswith="notified").exists()

    fake.failing = False
    clock.advance(webhooks.BASE_DELAY * 4 + 1)  # past the longest first backoff
    try:
        assert await deliver_due_notices(allowed, vault) == 1
    finally:
        clock.reset()
    assert [k for k, _, _ in fake.received] == ["fail", "fail"]
    assert fake.received[1][1] == body  # the same notice, signed afresh
    notice = await ScoreNotice.get(id=notice.id)
    assert notice.status == "delivered" and notice.body is None
    entry = await AccessLogEntry.get(member_id=member.id, resource="notified: reach score changed")
    assert entry.app_id == watcher.app.id and entry.scope == "score:reach"


async def test_no_notice_is_sent_after_revocation(
    vault: Vault, allowed: Settings, flow: ScoringFlow, receiver: Any
) -> None:
    fake, server = receiver
    watcher = await _app(vault, server.url("/ok"))
    member = await _scored_member(vault, flow)
    granted = await issue(member.id, watcher, scopes=["score:reach"])
    await flow.recompute_member(member_id=member.id)
    await grants.revoke_grant(member_id=member.id, grant_id=granted.grant.id)

    assert await deliver_due_notices(allowed, vault) == 1
    assert fake.received == []
    notice = await ScoreNotice.get()
    assert notice.status == "failed" and notice.last_error == "grant_not_live"
    assert notice.body is None
    # and a change after the revocation queues nothing at all
    queued = await notices.queue_score_changed(
        member_id=member.id, scorer="reach", changed_at=utcnow()
    )
    assert queued == 0


@pytest.mark.parametrize("state", ["paused", "sharing_paused", "expired", "narrowed", "band"])
async def test_grants_that_may_not_read_the_score_get_no_notice(
    vault: Vault, allowed: Settings, flow: ScoringFlow, receiver: Any, state: str
) -> None:
    _, server = receiver
    watcher = await _app(vault, server.url("/ok"))
    member = await _scored_member(vault, flow)
    scopes = ["profile", "score:reach"] if state == "narrowed" else ["score:reach"]
    granted = await issue(member.id, watcher, scopes=scopes, lifetime="1d")
    gid = granted.grant.id
    if state == "paused":
        await grants.pause_grant(member_id=member.id, grant_id=gid)
    elif state == "sharing_paused":
        await grants.pause_sharing(member_id=member.id)
    elif state == "narrowed":
        await grants.narrow_grant(member_id=member.id, grant_id=gid, scopes=["profile"])
    elif state == "band":
        # a disclosure-limited scope would learn of every change of the exact value
        assert notices.notified_scopes(["score:reach:band"], "reach") == []
        return
    elif state == "expired":
        clock.advance(2 * 86_400)
    try:
        queued = await notices.queue_score_changed(
            member_id=member.id, scorer="reach", changed_at=utcnow()
        )
    finally:
        clock.reset()
    assert queued == 0


async def test_score_notices_need_a_webhook_url(vault: Vault) -> None:
    with pytest.raises(InvalidClientMetadataError):
        await apps.create_app(
            name="No hook", redirect_uris=["https://x.example/cb"], score_notices=True
        )
    registered = await _app(vault, "https://watcher.example/hook")
    assert registered.client_information()["score_notices"] is True


async def test_the_ssrf_guard_applies_to_notice_urls(
    vault: Vault, settings: Settings, flow: ScoringFlow, receiver: Any
) -> None:
    fake, server = receiver
    watcher = await _app(vault, server.url("/ok"))  # loopback, not allowed by default
    member = await _scored_member(vault, flow)
    await issue(member.id, watcher, scopes=["score:reach"])
    await flow.recompute_member(member_id=member.id)
    await deliver_due_notices(settings, vault)
    assert fake.received == []
    notice = await ScoreNotice.get()
    assert notice.status == "failed" and notice.last_error == "url_not_allowed"
