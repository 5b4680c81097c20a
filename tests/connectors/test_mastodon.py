"""The mastodon connector against a fake instance on loopback, through the guarded client."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import pytest

from coop.connectors import spec
from coop.connectors.builtin.mastodon import MastodonConnector, instance_url
from coop.connectors.outbound import OutboundClient
from coop.types import clock
from tests.fakes.mastodon import ACCOUNT_ID, FakeMastodon, running_mastodon
from tests.fakes.upstream import ContextHarness, Drain, loopback_client

STATUSES = f"/api/v1/accounts/{ACCOUNT_ID}/statuses"


@pytest.fixture
def fake() -> Iterator[FakeMastodon]:
    clock.reset()
    with running_mastodon() as server:
        yield server
    clock.reset()


@pytest.fixture
async def http() -> AsyncIterator[OutboundClient]:
    async with loopback_client() as client:
        yield client


@pytest.fixture
def harness(fake: FakeMastodon) -> ContextHarness:
    app, token = fake.issue_token()
    return ContextHarness(
        config={"instance": fake.url},
        credentials={
            "access_token": token,
            "client_id": app.client_id,
            "client_secret": app.client_secret,
        },
    )


def connector() -> MastodonConnector:
    return MastodonConnector(page_size=20)


async def test_first_sync_reads_every_own_status_with_counts_and_a_follower_count(
    fake: FakeMastodon, harness: ContextHarness, http: OutboundClient
) -> None:
    made = fake.add_statuses(45, favourites_count=3, reblogs_count=2, replies_count=1)

    drain = await Drain().run(connector(), harness.context(http))

    posts = drain.of_kind(spec.POST)
    assert sorted(p.external_id for p in posts) == sorted(s.id for s in made)
    assert all(p.counts == {"favourites": 3, "reblogs": 2, "replies": 1} for p in posts)
    assert all(p.text == f"Status {p.external_id} & more" for p in posts)  # HTML to plain text
    [audience] = drain.of_kind(spec.AUDIENCE)
    assert audience.counts == {"followers": 42}
    assert audience.text is None and audience.title is None
    assert drain.cursor == max(s.id for s in made)


async def test_45_new_statuses_between_polls_are_all_read_by_min_id_walking(
    fake: FakeMastodon, harness: ContextHarness, http: OutboundClient
) -> None:
    fake.add_statuses(5)
    drain = await Drain().run(connector(), harness.context(http))
    fake.log.clear()
    new = fake.add_statuses(45)
    # Statuses also arrive while coop is paging (SY-07).
    first = fake.pages_served + 1
    fake.on_statuses_page.append(lambda n: fake.add_statuses(3) if n == first else None)
    drain.records.clear()

    await drain.run(connector(), harness.context(http))

    got = {p.external_id for p in drain.of_kind(spec.POST)}
    assert {s.id for s in new} <= got
    assert len(got) == 48
    queries = [r.query for r in fake.log.to(STATUSES)]
    assert all("min_id" in q and "since_id" not in q for q in queries)
    assert all(q["limit"] == "20" and q["exclude_reblogs"] == "true" for q in queries)


async def test_boosts_and_direct_messages_are_never_read(
    fake: FakeMastodon, harness: ContextHarness, http: OutboundClient
) -> None:
    fake.add_statuses(2, reblog=True)
    fake.add_statuses(2, visibility="direct")
    public = fake.add_statuses(1)

    drain = await Drain().run(connector(), harness.context(http))

    assert [p.external_id for p in drain.of_kind(spec.POST)] == [public[0].id]


async def test_a_429_with_an_iso_reset_throttles_for_the_server_given_time_and_resumes(
    fake: FakeMastodon, harness: ContextHarness, http: OutboundClient
) -> None:
    made = fake.add_statuses(45)
    fake.on_statuses_page.append(
        lambda n: fake.throttle_next(reset_in=120, path=STATUSES) if n == 1 else None
    )
    drain = Drain()

    with pytest.raises(spec.Throttled) as caught:
        await drain.run(connector(), harness.context(http))

    assert 115 <= caught.value.retry_after <= 121
    assert drain.cursor == made[19].id  # the first page is committed, nothing beyond it
    clock.advance(121)
    await drain.run(connector(), harness.context(http))
    ids = [p.external_id for p in drain.of_kind(spec.POST)]
    assert sorted(ids) == sorted(s.id for s in made)
    assert len(ids) == len(set(ids))


async def test_an_exhausted_rate_limit_stops_before_spending_another_request(
    fake: FakeMastodon, harness: ContextHarness, http: OutboundClient
) -> None:
    fake.add_statuses(45)
    fake.rate_remaining = 2  # verify_credentials and one page

    with pytest.raises(spec.Throttled) as caught:
        await Drain().run(connector(), harness.context(http))

    assert 290 <= caught.value.retry_after <= 301
    assert len(fake.log.to("/api/")) == 2
    assert not [r for r in fake.log.all() if r.path.startswith("/api/") and r.method != "GET"]


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_transient_and_keep_the_cursor(
    fake: FakeMastodon, harness: ContextHarness, http: OutboundClient, status: int
) -> None:
    fake.add_statuses(3)
    fake.fail_next(status, path=STATUSES)
    drain = Drain(cursor="5")

    with pytest.raises(spec.TransientUpstreamError):
        await drain.run(connector(), harness.context(http))

    assert drain.cursor == "5"


async def test_a_read_timeout_is_transient(
    fake: FakeMastodon, harness: ContextHarness, http: OutboundClient
) -> None:
    fake.fail_next(200, path="/api/v1/accounts/verify_credentials", delay=2.5)

    with pytest.raises(spec.TransientUpstreamError):
        await Drain().run(connector(), harness.context(http))


async def test_a_revoked_token_needs_reauthorization(
    fake: FakeMastodon, harness: ContextHarness, http: OutboundClient
) -> None:
    fake.revoke_all()

    with pytest.raises(spec.NeedsReauthorization):
        await Drain().run(connector(), harness.context(http))


async def test_a_malformed_body_is_a_permanent_error(
    fake: FakeMastodon, harness: ContextHarness, http: OutboundClient
) -> None:
    fake.add_statuses(3)
    fake.malform_next(path=STATUSES)

    with pytest.raises(spec.PermanentUpstreamError):
        await Drain().run(connector(), harness.context(http))


async def test_revoke_posts_to_oauth_revoke_and_the_token_stops_working(
    fake: FakeMastodon, harness: ContextHarness, http: OutboundClient
) -> None:
    await connector().revoke(harness.context(http))

    [call] = fake.log.to("/oauth/revoke", "POST")
    assert call.form["token"] == harness.credentials["access_token"]
    assert call.form["client_id"] == harness.credentials["client_id"]
    assert fake.live_tokens() == []


async def test_a_failed_revoke_is_logged_without_secrets_and_not_raised(
    fake: FakeMastodon,
    harness: ContextHarness,
    http: OutboundClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake.fail_next(503, path="/oauth/revoke")

    with caplog.at_level(logging.INFO):
        await connector().revoke(harness.context(http))

    assert "mastodon revoke failed" in caplog.text
    for secret in harness.credentials.values():
        assert secret not in caplog.text
        assert all(secret not in str(r.__dict__) for r in caplog.records)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("example.social", "https://example.social"),
        ("https://Example.Social/", "https://example.social"),
        ("https://example.social:8443", "https://example.social:8443"),
        ("http://127.0.0.1:3000", "http://127.0.0.1:3000"),
    ],
)
def test_instance_addresses_are_normalised(typed: str, expected: str) -> None:
    assert instance_url(typed, allow_loopback_http=True) == expected


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "http://example.social",
        "ftp://example.social",
        "https://user:pw@example.social",
        "https://example.social/@alice",
        "https://example.social/?x=1",
        "exa mple.social",
        "javascript:alert(1)",
    ],
)
def test_instance_addresses_that_are_not_a_bare_https_server_are_refused(typed: str) -> None:
    with pytest.raises(spec.InvalidSourceError):
        instance_url(typed, allow_loopback_http=True)


def test_plain_http_on_loopback_needs_the_operator_allowance() -> None:
    with pytest.raises(spec.InvalidSourceError):
        instance_url("http://127.0.0.1:3000")


def test_the_connector_meets_the_contract() -> None:
    from coop.connectors.registry import validate

    validate(MastodonConnector())
    assert isinstance(MastodonConnector(), spec.Connector)
    assert isinstance(MastodonConnector(), spec.Revocable)
