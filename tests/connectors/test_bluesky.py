"""The bluesky connector against a fake PDS, resolver and PLC directory on loopback, through
the guarded client: login, paging, reposts, session refresh, rate limits, errors, revoke."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import pytest

from coop.connectors import spec
from coop.connectors.builtin.bluesky import BlueskyConnector, Position
from coop.connectors.outbound import OutboundClient
from coop.types import clock, utcnow
from tests.fakes.bluesky import DID, HANDLE, PASSWORD, FakeBluesky, running_bluesky
from tests.fakes.upstream import ContextHarness, Drain, loopback_client

FEED = "/xrpc/app.bsky.feed.getAuthorFeed"


@pytest.fixture
def fake() -> Iterator[FakeBluesky]:
    clock.reset()
    with running_bluesky() as server:
        yield server
    clock.reset()


@pytest.fixture
async def http() -> AsyncIterator[OutboundClient]:
    async with loopback_client() as client:
        yield client


def connector(fake: FakeBluesky) -> BlueskyConnector:
    made = BlueskyConnector()
    made.configure({"COOP_BLUESKY_RESOLVER_URL": fake.url, "COOP_BLUESKY_PLC_URL": fake.url})
    return made


@pytest.fixture
def harness(fake: FakeBluesky) -> ContextHarness:
    access, refresh = fake.log_in()
    return ContextHarness(
        config={"handle": HANDLE, "did": fake.did, "pds": fake.url},
        credentials={"access_jwt": access, "refresh_jwt": refresh},
    )


# -- connecting ----------------------------------------------------------------------------


async def test_login_resolves_the_handle_to_its_pds_and_keeps_only_the_session(
    fake: FakeBluesky, http: OutboundClient
) -> None:
    login = await connector(fake).login(http, "@Alice.Test ", PASSWORD)

    assert login.config == {"handle": HANDLE, "did": DID, "pds": fake.url}
    assert set(login.credentials) == {"access_jwt", "refresh_jwt"}
    assert PASSWORD not in json.dumps([dict(login.config), dict(login.credentials)])
    assert [r.path for r in fake.log.all()] == [
        "/xrpc/com.atproto.identity.resolveHandle",
        f"/{DID}",
        "/xrpc/com.atproto.server.createSession",
    ]
    [create] = fake.log.to("/xrpc/com.atproto.server.createSession")
    assert create.form["identifier"] == DID  # the verified DID, not the typed handle


async def test_a_did_web_account_is_resolved_from_its_well_known_document(
    http: OutboundClient,
) -> None:
    with running_bluesky(did_web=True) as fake:
        login = await connector(fake).login(http, HANDLE, PASSWORD)

    assert login.config["did"] == fake.did
    assert login.config["did"].startswith("did:web:127.0.0.1%3A")
    assert "/.well-known/did.json" in fake.log.paths()


async def test_a_wrong_app_password_is_refused_as_needing_reauthorization(
    fake: FakeBluesky, http: OutboundClient
) -> None:
    with pytest.raises(spec.NeedsReauthorization):
        await connector(fake).login(http, HANDLE, "wrong-pass-word-here")
    assert fake.sessions == {}


@pytest.mark.parametrize(
    ("account", "code"),
    [("not a handle", "invalid_handle"), ("nobody.test", "handle_not_resolved")],
)
async def test_an_unusable_or_unknown_handle_is_refused_with_its_code(
    fake: FakeBluesky, http: OutboundClient, account: str, code: str
) -> None:
    with pytest.raises(spec.InvalidSourceError) as caught:
        await connector(fake).login(http, account, PASSWORD)
    assert caught.value.code == code
    assert fake.log.to("/xrpc/com.atproto.server.createSession") == []


@pytest.mark.parametrize(
    ("document", "code"),
    [
        ({"aka_handle": "mallory.test"}, "handle_not_resolved"),  # does not claim the handle
        ({"pds_endpoint": "https://10.0.0.5"}, "url_not_allowed"),  # refused by the SSRF guard
        ({"pds_endpoint": "http://pds.example"}, "handle_not_resolved"),  # not https
    ],
)
async def test_a_did_document_naming_no_usable_pds_for_the_handle_is_refused(
    http: OutboundClient, document: dict[str, str], code: str
) -> None:
    with (
        running_bluesky(**document) as fake,
        pytest.raises(spec.InvalidSourceError) as caught,
    ):
        await connector(fake).login(http, HANDLE, PASSWORD)
    assert caught.value.code == code
    assert fake.log.to("/xrpc/com.atproto.server.createSession") == []


# -- reading -------------------------------------------------------------------------------


async def test_first_sync_pages_through_every_own_post_with_counts_and_followers(
    fake: FakeBluesky, harness: ContextHarness, http: OutboundClient
) -> None:
    made = fake.add_posts(230, likes=4, reposts=2, replies=1, quotes=3)

    drain = await Drain().run(connector(fake), harness.context(http))

    posts = drain.of_kind(spec.POST)
    assert sorted(p.external_id for p in posts) == sorted(f"bluesky:{p.uri}" for p in made)
    assert all(
        p.counts == {"favourites": 4, "reblogs": 2, "replies": 1, "quotes": 3} for p in posts
    )
    assert posts[0].text is not None and "café" in posts[0].text
    assert posts[0].url is not None and posts[0].url.startswith(f"https://bsky.app/profile/{DID}/")
    [audience] = drain.of_kind(spec.AUDIENCE)
    assert audience.counts == {"followers": 17}
    feeds = fake.log.to(FEED)
    assert len(feeds) == 3  # 100 + 100 + 30
    assert [q.query.get("cursor") is None for q in feeds] == [True, False, False]
    assert all(q.query["limit"] == "100" and q.query["actor"] == DID for q in feeds)
    assert Position.parse(drain.cursor).page == ""
    assert Position.parse(drain.cursor).watermark == max(p.created_at for p in made).isoformat()


async def test_reposts_and_other_peoples_posts_are_never_kept(
    fake: FakeBluesky, harness: ContextHarness, http: OutboundClient
) -> None:
    own = fake.add_posts(1)
    fake.add_posts(2, author="did:plc:zzzzzzzzzzzzzzzzzzzzzzzz", reposted_at=utcnow())
    reply = fake.add_posts(1, reply_to_other=True)

    drain = await Drain().run(connector(fake), harness.context(http))

    kept = drain.of_kind(spec.POST)
    assert sorted(r.external_id for r in kept) == sorted(f"bluesky:{p.uri}" for p in own + reply)
    stored = json.dumps([[r.text, r.url, r.external_id] for r in drain.records])
    assert "bob.test" not in stored and "zzzzzzzz" not in stored
    assert "someone else" not in stored


async def test_a_later_sync_rereads_recent_posts_for_their_counts_and_stops_there(
    fake: FakeBluesky, harness: ContextHarness, http: OutboundClient
) -> None:
    old = fake.add_posts(150, start=utcnow() - timedelta(days=200))
    recent = fake.add_posts(3, likes=1)
    drain = await Drain().run(connector(fake), harness.context(http))
    fake.log.clear()
    for post in recent:
        post.likes = 9
    new = fake.add_posts(2, likes=0)
    drain.records.clear()

    await drain.run(connector(fake), harness.context(http))

    counts = {r.external_id: r.counts["favourites"] for r in drain.of_kind(spec.POST)}
    assert {f"bluesky:{p.uri}" for p in new} <= set(counts)
    assert all(counts[f"bluesky:{p.uri}"] == 9 for p in recent)
    assert len(fake.log.to(FEED)) == 1  # the 200-day-old posts are not paged through again
    assert f"bluesky:{old[0].uri}" not in counts


async def test_a_crash_mid_pass_resumes_from_the_committed_page(
    fake: FakeBluesky, harness: ContextHarness, http: OutboundClient
) -> None:
    fake.add_posts(250)
    fake.on_feed_page.append(lambda n: fake.fail_next(500, path=FEED) if n == 2 else None)
    drain = Drain()

    with pytest.raises(spec.TransientUpstreamError):
        await drain.run(connector(fake), harness.context(http))

    resume = Position.parse(drain.cursor).page
    assert resume != ""
    fake.log.clear()
    await drain.run(connector(fake), harness.context(http))
    assert fake.log.to(FEED)[0].query["cursor"] == resume
    assert len({r.external_id for r in drain.of_kind(spec.POST)}) == 250


async def test_an_expired_access_token_is_refreshed_once_and_the_new_pair_saved_first(
    fake: FakeBluesky, harness: ContextHarness, http: OutboundClient
) -> None:
    fake.add_posts(3)
    old_refresh = harness.credentials["refresh_jwt"]
    fake.expire_access_tokens()

    drain = await Drain().run(connector(fake), harness.context(http))

    assert len(drain.of_kind(spec.POST)) == 3
    [saved] = harness.saved
    assert saved["refresh_jwt"] != old_refresh
    assert saved["refresh_jwt"] in fake.live_refresh_tokens()
    assert old_refresh not in fake.live_refresh_tokens()  # rotated upstream
    assert len(fake.log.to("/xrpc/com.atproto.server.refreshSession")) == 1


async def test_an_expired_refresh_token_needs_reauthorization_without_a_retry_loop(
    fake: FakeBluesky, harness: ContextHarness, http: OutboundClient
) -> None:
    fake.expire_refresh_tokens()

    with pytest.raises(spec.NeedsReauthorization):
        await Drain().run(connector(fake), harness.context(http))

    assert len(fake.log.to("/xrpc/com.atproto.server.refreshSession")) == 1
    assert harness.saved == []


async def test_a_429_throttles_until_the_ratelimit_reset_and_resumes_where_it_stopped(
    fake: FakeBluesky, harness: ContextHarness, http: OutboundClient
) -> None:
    made = fake.add_posts(150)
    fake.on_feed_page.append(lambda n: fake.throttle_next(reset_in=120) if n == 1 else None)
    drain = Drain()

    with pytest.raises(spec.Throttled) as caught:
        await drain.run(connector(fake), harness.context(http))

    assert 115 <= caught.value.retry_after <= 121
    assert len(drain.of_kind(spec.POST)) == 100  # the first page is committed
    clock.advance(121)
    await drain.run(connector(fake), harness.context(http))
    assert {r.external_id for r in drain.of_kind(spec.POST)} == {f"bluesky:{p.uri}" for p in made}


async def test_an_exhausted_limit_stops_before_the_next_request(
    fake: FakeBluesky, harness: ContextHarness, http: OutboundClient
) -> None:
    fake.add_posts(150)
    fake.rate_remaining = 2  # getProfile and the first page, then nothing left

    with pytest.raises(spec.Throttled):
        await Drain().run(connector(fake), harness.context(http))

    assert len(fake.log.to(FEED)) == 1  # no request spent on a certain 429


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (502, b"{}", spec.TransientUpstreamError),
        (400, b'{"error":"InvalidRequest"}', spec.PermanentUpstreamError),
        (200, b'{"feed": "not a list"}', spec.PermanentUpstreamError),
        (200, b'{"feed": [{"post": 1', spec.PermanentUpstreamError),
    ],
)
async def test_upstream_failures_map_to_contract_errors(
    fake: FakeBluesky,
    harness: ContextHarness,
    http: OutboundClient,
    status: int,
    body: bytes,
    error: type[Exception],
) -> None:
    fake.add_posts(1)
    fake.fail_next(status, path=FEED, body=body)

    with pytest.raises(error):
        await Drain().run(connector(fake), harness.context(http))


# -- disconnecting ---------------------------------------------------------------------------


async def test_revoke_deletes_the_session_upstream_and_is_idempotent(
    fake: FakeBluesky, harness: ContextHarness, http: OutboundClient
) -> None:
    refresh = harness.credentials["refresh_jwt"]

    await connector(fake).revoke(harness.context(http))
    await connector(fake).revoke(harness.context(http))  # already gone: still fine

    assert refresh not in fake.live_refresh_tokens()
    assert fake.sessions == {}
    [first, _] = fake.log.to("/xrpc/com.atproto.server.deleteSession")
    assert first.headers["authorization"] == f"Bearer {refresh}"


async def test_a_failing_revoke_raises_so_the_engine_retries_it(
    fake: FakeBluesky, harness: ContextHarness, http: OutboundClient
) -> None:
    fake.fail_next(503, path="/xrpc/com.atproto.server.deleteSession")

    with pytest.raises(spec.TransientUpstreamError):
        await connector(fake).revoke(harness.context(http))
    assert harness.credentials["refresh_jwt"] in fake.live_refresh_tokens()
