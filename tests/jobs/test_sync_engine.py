"""The sync engine's guarantees (SY-01..SY-08, ER-07) with a scripted connector and a fake clock."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import pytest

from coop.config import Settings
from coop.connectors import service, spec, store
from coop.connectors.models import Connection, Record, SyncRun
from coop.connectors.outbound import Limits
from coop.connectors.registry import Registry
from coop.errors import ConflictError
from coop.jobs import sync as sync_jobs
from coop.jobs.engine import RetryBudget, SyncOutcome
from coop.types import Clock, clock, utcnow
from coop.vault import Vault
from tests.connectors.helpers import FakeSleep
from tests.fakes.blog import Blog
from tests.fakes.server import LiveServer

Hook = Callable[[int, spec.SyncContext], Awaitable[None]]


class ScriptedConnector:
    """Serves `pages` of external ids; the cursor is the next page number. `faults` are raised
    (in order) when a page is about to be fetched; `None` means "no fault this time"."""

    api_version: ClassVar[int] = spec.API_VERSION
    name: ClassVar[str] = "scripted"
    title: ClassVar[str] = "Scripted"
    description: ClassVar[str] = "A test source"
    reads: ClassVar[tuple[str, ...]] = (spec.POST,)
    never_reads: ClassVar[tuple[str, ...]] = ()
    auth: ClassVar[spec.AuthMethod] = "url"

    def __init__(self, pages: list[list[str]]) -> None:
        self.pages = pages
        self.faults: list[BaseException | None] = []
        self.fetched: list[int] = []
        self.hook: Hook | None = None
        self.bad_counts_on: int | None = None
        self.stops_quietly = False  # ends its batches when still_wanted() says no

    def record(self, external_id: str, page: int) -> spec.Record:
        counts: dict[str, int] = {"likes": page}
        if self.bad_counts_on == page:
            counts = {"likes": "many"}  # type: ignore[dict-item]  # fails while sealing
        return spec.Record(
            kind=spec.POST,
            external_id=external_id,
            occurred_at=datetime(2026, 11, 1, tzinfo=UTC) + timedelta(hours=page),
            counts=counts,
            title=f"title {external_id}",
        )

    async def sync(
        self, ctx: spec.SyncContext, cursor: str | None
    ) -> AsyncIterator[spec.SyncBatch]:
        for page in range(int(cursor or 0), len(self.pages)):
            if self.faults:
                fault = self.faults.pop(0)
                if fault is not None:
                    raise fault
            if self.hook is not None:
                await self.hook(page, ctx)
            if self.stops_quietly and not await ctx.still_wanted():
                return
            self.fetched.append(page)
            records = [self.record(x, page) for x in self.pages[page]]
            yield spec.SyncBatch(records=records, cursor=str(page + 1))


PAGES = [["a", "b"], ["c", "d"], ["e"]]
ALL = 5


@pytest.fixture
def scripted() -> ScriptedConnector:
    return ScriptedConnector([list(p) for p in PAGES])


@pytest.fixture
async def jobs(
    settings: Settings, vault: Vault, fake_sleep: FakeSleep, scripted: ScriptedConnector, db: str
) -> AsyncIterator[sync_jobs.Jobs]:
    registry = Registry({"scripted": scripted})
    bundle = sync_jobs.setup(settings, vault, registry=registry, sleep=fake_sleep, rand=lambda: 1.0)
    yield bundle
    await bundle.queue.close()


async def new_connection(jobs: sync_jobs.Jobs, member: uuid.UUID) -> uuid.UUID:
    view = await service.create_connection(
        vault=jobs.vault,
        registry=jobs.registry,
        member_id=member,
        connector="scripted",
        config={"url": "https://example.org"},
    )
    return view.id


async def cursor_of(jobs: sync_jobs.Jobs, connection_id: uuid.UUID) -> str | None:
    claim = store.Claim(connection_id, uuid.uuid4(), "scripted", 0, uuid.uuid4())
    row = await Connection.get(id=connection_id)
    claim = store.Claim(row.id, row.member_id, row.connector, row.generation, uuid.uuid4())  # type: ignore[attr-defined]
    state = await store.load_state(vault=jobs.vault, claim=claim)
    return state.cursor


async def titles(jobs: sync_jobs.Jobs, member: uuid.UUID) -> list[str | None]:
    return sorted(r.title for r in await service.list_records(vault=jobs.vault, member_id=member))


# -- SY-01 / SY-02 --------------------------------------------------------------------------


async def test_running_the_same_sync_many_times_stores_each_item_once(
    jobs: sync_jobs.Jobs, member: uuid.UUID, scripted: ScriptedConnector
) -> None:
    connection_id = await new_connection(jobs, member)
    first = await jobs.engine.run(connection_id)
    assert (first.outcome, first.records_added) == ("ok", ALL)
    for _ in range(3):
        await Connection.filter(id=connection_id).update(cursor_sealed=None)  # full re-read
        again = await jobs.engine.run(connection_id)
        assert (again.outcome, again.records_added) == ("ok", 0)
    assert await Record.filter(connection_id=connection_id).count() == ALL
    row = await Connection.get(id=connection_id)
    assert row.records_count == ALL and row.status == "ok"


async def test_an_updated_upstream_item_overwrites_its_row(
    jobs: sync_jobs.Jobs, member: uuid.UUID, scripted: ScriptedConnector
) -> None:
    connection_id = await new_connection(jobs, member)
    await jobs.engine.run(connection_id)
    scripted.pages.append(["a"])  # "a" comes back on a later page, changed
    await jobs.engine.run(connection_id)
    assert await Record.filter(connection_id=connection_id).count() == ALL
    records = await service.list_records(vault=jobs.vault, member_id=member)
    assert {r.title: r.counts["likes"] for r in records}["title a"] == 3


async def test_a_crash_between_batches_resumes_from_the_last_commit_without_loss_or_duplicates(
    jobs: sync_jobs.Jobs, member: uuid.UUID, scripted: ScriptedConnector
) -> None:
    connection_id = await new_connection(jobs, member)
    scripted.faults = [None, None, RuntimeError("worker died")]
    crashed = await jobs.engine.run(connection_id)
    assert (crashed.outcome, crashed.error_code) == ("failing", "internal_error")
    assert await cursor_of(jobs, connection_id) == "2"
    assert await titles(jobs, member) == ["title a", "title b", "title c", "title d"]

    resumed = await jobs.engine.run(connection_id)
    assert (resumed.outcome, resumed.records_added) == ("ok", 1)
    assert scripted.fetched == [0, 1, 2]  # page 2 once: nothing fetched twice, nothing skipped
    assert await Record.filter(connection_id=connection_id).count() == ALL


async def test_a_crash_inside_a_commit_keeps_neither_its_items_nor_its_cursor(
    jobs: sync_jobs.Jobs, member: uuid.UUID, scripted: ScriptedConnector
) -> None:
    connection_id = await new_connection(jobs, member)
    scripted.bad_counts_on = 1
    crashed = await jobs.engine.run(connection_id)
    assert crashed.outcome == "failing"
    assert await cursor_of(jobs, connection_id) == "1"
    assert await titles(jobs, member) == ["title a", "title b"]

    scripted.bad_counts_on = None
    assert (await jobs.engine.run(connection_id)).records_added == 3
    assert await Record.filter(connection_id=connection_id).count() == ALL


# -- SY-03 / SY-04 / SY-05 --------------------------------------------------------------------


async def test_throttling_waits_the_given_time_and_resumes_from_the_same_cursor(
    jobs: sync_jobs.Jobs,
    member: uuid.UUID,
    scripted: ScriptedConnector,
    fake_sleep: FakeSleep,
    frozen_clock: Clock,
) -> None:
    connection_id = await new_connection(jobs, member)
    scripted.faults = [None, spec.Throttled(retry_after=3)]
    outcome = await jobs.engine.run(connection_id)
    assert outcome.outcome == "throttled"
    row = await Connection.get(id=connection_id)
    assert row.status == "throttled"
    assert row.next_sync_at == utcnow() + timedelta(seconds=3)
    assert await cursor_of(jobs, connection_id) == "1"
    assert fake_sleep.delays == []  # no busy retry inside the run

    frozen_clock.advance(2.999)
    assert await jobs.scheduler.tick() == 0  # not before the reset
    frozen_clock.advance(0.001)
    assert await jobs.scheduler.tick() == 1
    await jobs.queue.drain()
    assert scripted.fetched == [0, 1, 2]
    assert await Record.filter(connection_id=connection_id).count() == ALL
    assert (await Connection.get(id=connection_id)).status == "ok"


async def test_transient_failures_back_off_with_full_jitter_then_succeed(
    jobs: sync_jobs.Jobs, member: uuid.UUID, scripted: ScriptedConnector, fake_sleep: FakeSleep
) -> None:
    connection_id = await new_connection(jobs, member)
    failure = spec.TransientUpstreamError("503")
    scripted.faults = [None, failure, failure]
    outcome = await jobs.engine.run(connection_id)
    assert (outcome.outcome, outcome.records_added) == ("ok", ALL)
    assert fake_sleep.delays == [2.0, 4.0]  # rand()=1.0: the top of [0, base * 2^attempt]
    assert scripted.fetched == [0, 1, 2]


async def test_jitter_draws_below_the_exponential_cap(jobs: sync_jobs.Jobs) -> None:
    jobs.engine.rand = lambda: 0.5
    assert [jobs.engine.backoff(n) for n in (1, 2, 3, 10)] == [1.0, 2.0, 4.0, 15.0]


async def test_three_failed_attempts_end_the_run_failing_with_the_cursor_unchanged(
    jobs: sync_jobs.Jobs, member: uuid.UUID, scripted: ScriptedConnector, fake_sleep: FakeSleep
) -> None:
    connection_id = await new_connection(jobs, member)
    failure = spec.TransientUpstreamError("502")
    scripted.faults = [None, failure, failure, failure]
    outcome = await jobs.engine.run(connection_id)
    assert (outcome.outcome, outcome.error_code) == ("failing", "retries_exhausted")
    assert len(fake_sleep.delays) == 2  # 3 attempts = 2 waits
    assert await cursor_of(jobs, connection_id) == "1"
    row = await Connection.get(id=connection_id)
    assert row.status == "failing"
    assert "temporary errors" in row.status_reason
    assert row.next_sync_at is not None and row.next_sync_at > utcnow()


async def test_the_retry_budget_bounds_a_run_that_keeps_limping(
    jobs: sync_jobs.Jobs, member: uuid.UUID, scripted: ScriptedConnector, fake_sleep: FakeSleep
) -> None:
    scripted.pages = [[f"p{n}"] for n in range(20)]
    connection_id = await new_connection(jobs, member)
    failure = spec.TransientUpstreamError("reset")
    scripted.faults = [None, failure] * 20  # every other fetch fails: never 3 in a row
    outcome = await jobs.engine.run(connection_id)
    assert outcome.error_code == "retries_exhausted"
    assert len(fake_sleep.delays) == jobs.engine.retry_budget - 1
    assert sum(fake_sleep.delays) <= jobs.engine.retry_budget * jobs.engine.max_delay


async def test_the_workers_retry_ratio_budget_stops_retry_storms_across_runs(
    jobs: sync_jobs.Jobs, member: uuid.UUID, scripted: ScriptedConnector, fake_sleep: FakeSleep
) -> None:
    jobs.engine.retry_tokens = RetryBudget(reserve=2.0, tokens=2.0)
    connection_id = await new_connection(jobs, member)
    failure = spec.TransientUpstreamError("503")
    scripted.faults = [failure, None, failure, None, failure]
    outcome = await jobs.engine.run(connection_id)
    assert outcome.error_code == "retries_exhausted"
    assert len(fake_sleep.delays) == 2  # the third retry found the budget empty
    assert await cursor_of(jobs, connection_id) == "2"

    budget = RetryBudget(reserve=2.0, tokens=0.0)
    assert budget.withdraw() is False
    for _ in range(10):  # ten requests earn one retry at a 10 % ratio
        budget.deposit()
    assert budget.withdraw() is True and budget.withdraw() is False
    clock.advance(60)  # the reserve refills over a minute
    assert budget.withdraw() is True


async def test_a_refused_credential_asks_for_reauthorization_without_retrying(
    jobs: sync_jobs.Jobs, member: uuid.UUID, scripted: ScriptedConnector, fake_sleep: FakeSleep
) -> None:
    connection_id = await new_connection(jobs, member)
    scripted.faults = [spec.NeedsReauthorization("401")]
    outcome = await jobs.engine.run(connection_id)
    assert outcome.outcome == "needs_reauthorization"
    assert fake_sleep.delays == []
    row = await Connection.get(id=connection_id)
    assert (row.status, row.next_sync_at) == ("needs_reauthorization", None)
    assert "Reconnect" in row.status_reason
    clock.advance(10 * 24 * 3600)
    assert await jobs.scheduler.tick() == 0  # the scheduler leaves it to the member

    await service.reauthorize(
        vault=jobs.vault, member_id=member, connection_id=connection_id, credentials={"t": "new"}
    )
    assert await jobs.scheduler.tick() == 1
    await jobs.queue.drain()
    assert (await Connection.get(id=connection_id)).status == "ok"


async def test_a_permanent_upstream_error_fails_once_with_a_reason(
    jobs: sync_jobs.Jobs, member: uuid.UUID, scripted: ScriptedConnector, fake_sleep: FakeSleep
) -> None:
    connection_id = await new_connection(jobs, member)
    scripted.faults = [spec.PermanentUpstreamError("404")]
    outcome = await jobs.engine.run(connection_id)
    assert (outcome.outcome, outcome.error_code) == ("failing", "upstream_error")
    assert fake_sleep.delays == []
    run = await SyncRun.get(connection_id=connection_id)
    assert (run.outcome, run.error_code, run.finished_at is not None) == (
        "failing",
        "upstream_error",
        True,
    )


async def test_real_5xx_and_timeouts_are_retried_then_reported(
    settings: Settings,
    vault: Vault,
    member: uuid.UUID,
    blog: Blog,
    blog_server: LiveServer,
    fake_sleep: FakeSleep,
) -> None:
    bundle = sync_jobs.setup(
        settings,
        vault,
        sleep=fake_sleep,
        rand=lambda: 1.0,
        limits=Limits(connect=1.0, read=0.2, total=0.5),
    )
    blog.delay = 2.0
    for path in ("/status/500", "/slow.xml"):
        view = await service.connect_feed(
            vault=vault,
            registry=bundle.registry,
            guard=bundle.guard,
            member_id=member,
            url=blog_server.url(path),
        )
        outcome = await bundle.engine.run(view.id)
        assert (outcome.outcome, outcome.error_code) == ("failing", "retries_exhausted")
        assert [p for p, _ in blog.requests].count(path) == 3
    blog.failures = 2
    view = await service.connect_feed(
        vault=vault,
        registry=bundle.registry,
        guard=bundle.guard,
        member_id=member,
        url=blog_server.url("/flaky.xml"),
    )
    assert (await bundle.engine.run(view.id)).outcome == "ok"
    await bundle.queue.close()


async def test_a_429_from_a_feed_marks_it_throttled_for_retry_after(
    settings: Settings, vault: Vault, member: uuid.UUID, blog_server: LiveServer
) -> None:
    bundle = sync_jobs.setup(settings, vault)
    view = await service.connect_feed(
        vault=vault,
        registry=bundle.registry,
        guard=bundle.guard,
        member_id=member,
        url=blog_server.url("/status/429"),
    )
    before = utcnow()
    assert (await bundle.engine.run(view.id)).outcome == "throttled"
    row = await Connection.get(id=view.id)
    assert row.status == "throttled"
    assert row.next_sync_at is not None
    assert row.next_sync_at - before >= timedelta(seconds=3)


# -- SY-06 -------------------------------------------------------------------------------------


async def test_concurrent_sync_requests_run_exactly_once(
    jobs: sync_jobs.Jobs, member: uuid.UUID, scripted: ScriptedConnector
) -> None:
    connection_id = await new_connection(jobs, member)
    release = asyncio.Event()

    async def hold(page: int, ctx: spec.SyncContext) -> None:
        await release.wait()

    scripted.hook = hold
    tasks = [asyncio.create_task(jobs.engine.run(connection_id)) for _ in range(10)]
    pending = set(tasks)
    while len(pending) > 1:  # nine claims are refused while the first run is held
        _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    outcomes = [r for r in results if isinstance(r, SyncOutcome)]
    conflicts = [r for r in results if isinstance(r, ConflictError)]
    assert len(outcomes) == 1 and len(conflicts) == 9
    assert {c.code for c in conflicts} == {"sync_already_running"}
    assert scripted.fetched == [0, 1, 2]
    assert await Record.filter(connection_id=connection_id).count() == ALL


async def test_the_scheduler_skips_a_connection_that_a_sync_now_is_running(
    jobs: sync_jobs.Jobs, member: uuid.UUID
) -> None:
    connection_id = await new_connection(jobs, member)
    await Connection.filter(id=connection_id).update(next_sync_at=utcnow())
    await sync_jobs.sync_now(jobs, member_id=member, connection_id=connection_id)
    with pytest.raises(ConflictError):
        await sync_jobs.sync_now(jobs, member_id=member, connection_id=connection_id)
    assert await jobs.scheduler.tick() == 0
    await jobs.queue.drain()
    assert await Record.filter(connection_id=connection_id).count() == ALL


async def test_a_crashed_runs_claim_expires_and_the_connection_is_picked_up_again(
    jobs: sync_jobs.Jobs, member: uuid.UUID
) -> None:
    connection_id = await new_connection(jobs, member)
    await jobs.engine.claim(connection_id)  # the worker holding this claim dies
    await Connection.filter(id=connection_id).update(next_sync_at=utcnow())
    with pytest.raises(ConflictError):
        await jobs.engine.claim(connection_id)
    clock.advance(jobs.engine.lease_seconds + 1)
    assert await jobs.scheduler.tick() == 1
    await jobs.queue.drain()
    assert (await Connection.get(id=connection_id)).status == "ok"


# -- SY-08 / ER-07 -----------------------------------------------------------------------------


async def test_disconnecting_mid_sync_commits_nothing_after_and_stops_upstream_requests(
    jobs: sync_jobs.Jobs,
    member: uuid.UUID,
    scripted: ScriptedConnector,
    blog: Blog,
    blog_server: LiveServer,
) -> None:
    connection_id = await new_connection(jobs, member)
    refused: list[str] = []

    async def withdraw(page: int, ctx: spec.SyncContext) -> None:
        if page == 1:
            await sync_jobs.disconnect(jobs, member_id=member, connection_id=connection_id)
            assert await ctx.still_wanted() is False
            try:
                await ctx.http.get(blog_server.url("/rss.xml"))
            except store.Withdrawn:
                refused.append("http")

    scripted.hook = withdraw
    outcome = await jobs.engine.run(connection_id)
    assert outcome.outcome == "withdrawn"
    assert refused == ["http"] and blog.requests == []
    assert await Record.all().count() == 0
    assert await Connection.all().count() == 0


async def test_a_connector_that_stops_quietly_after_a_disconnect_ends_withdrawn_not_ok(
    jobs: sync_jobs.Jobs, member: uuid.UUID, scripted: ScriptedConnector
) -> None:
    """A third-party connector may simply stop when still_wanted() turns false; the engine,
    not the connector, decides that such a run was withdrawn: no "ok", no after_sync hook."""
    connection_id = await new_connection(jobs, member)
    hooked: list[object] = []

    async def hook(outcome: object) -> None:
        hooked.append(outcome)

    async def withdraw(page: int, ctx: spec.SyncContext) -> None:
        if page == 1:
            await sync_jobs.disconnect(jobs, member_id=member, connection_id=connection_id)

    scripted.hook = withdraw
    scripted.stops_quietly = True
    jobs.engine.after_sync.append(hook)
    try:
        outcome = await jobs.engine.run(connection_id)
    finally:
        jobs.engine.after_sync.remove(hook)
    assert outcome.outcome == "withdrawn"
    assert hooked == []
    assert await Record.all().count() == 0


async def test_erasing_the_member_mid_sync_resurrects_nothing(
    jobs: sync_jobs.Jobs, member: uuid.UUID, scripted: ScriptedConnector
) -> None:
    from coop.members.models import Member

    connection_id = await new_connection(jobs, member)

    async def erase(page: int, ctx: spec.SyncContext) -> None:
        if page == 1:
            await jobs.vault.shred(member)  # erasure destroys the key first...
        if page == 2:
            await Member.filter(id=member).delete()  # ...then purges the rows

    scripted.hook = erase
    outcome = await jobs.engine.run(connection_id)
    assert outcome.outcome == "withdrawn"
    assert await Record.filter(member_id=member).count() == 2  # page 0 only, from before
    await Member.filter(id=member).delete()  # the erasure's purge step
    assert await Record.all().count() == 0
    assert await Connection.all().count() == 0


async def test_a_reauthorization_mid_sync_discards_the_old_runs_remaining_batches(
    jobs: sync_jobs.Jobs, member: uuid.UUID, scripted: ScriptedConnector
) -> None:
    connection_id = await new_connection(jobs, member)

    async def reconnect(page: int, ctx: spec.SyncContext) -> None:
        if page == 1:
            await service.reauthorize(
                vault=jobs.vault, member_id=member, connection_id=connection_id, credentials={}
            )

    scripted.hook = reconnect
    outcome = await jobs.engine.run(connection_id)
    assert outcome.outcome == "withdrawn"
    assert await Record.filter(connection_id=connection_id).count() == 2
    row = await Connection.get(id=connection_id)
    assert (row.status, row.generation) == ("ok", 2)


# -- hooks ---------------------------------------------------------------------------------------


async def test_after_sync_hooks_run_after_a_successful_sync_and_cannot_break_it(
    jobs: sync_jobs.Jobs, member: uuid.UUID, scripted: ScriptedConnector
) -> None:
    seen: list[SyncOutcome] = []

    async def broken(outcome: SyncOutcome) -> None:
        raise RuntimeError("scoring is down")

    async def remember(outcome: SyncOutcome) -> None:
        seen.append(outcome)

    jobs.engine.after_sync.extend([broken, remember])
    connection_id = await new_connection(jobs, member)
    outcome = await jobs.engine.run(connection_id)
    assert outcome.outcome == "ok"
    assert seen == [outcome]
    assert (seen[0].member_id, seen[0].records_added) == (member, ALL)

    scripted.faults = [spec.PermanentUpstreamError("gone")]
    await Connection.filter(id=connection_id).update(cursor_sealed=None)
    await jobs.engine.run(connection_id)
    assert len(seen) == 1  # failures do not trigger rescoring


async def test_credentials_saved_mid_sync_are_committed_at_once(
    jobs: sync_jobs.Jobs, member: uuid.UUID, scripted: ScriptedConnector
) -> None:
    connection_id = await new_connection(jobs, member)

    async def refresh(page: int, ctx: spec.SyncContext) -> None:
        if page == 0:
            await ctx.save_credentials({"access_token": "fresh"})
            raise RuntimeError("crash right after the refresh")

    scripted.hook = refresh
    await jobs.engine.run(connection_id)
    row = await Connection.get(id=connection_id)
    claim = store.Claim(row.id, member, row.connector, row.generation, uuid.uuid4())
    state = await store.load_state(vault=jobs.vault, claim=claim)
    assert state.credentials == {"access_token": "fresh"}
    assert b"fresh" not in bytes(row.credentials_sealed or b"")
