"""Factories and fakes shared by connector and sync-engine tests."""

from __future__ import annotations

import dataclasses
import ipaddress
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from coop.config import Settings
from coop.connectors import spec
from coop.jobs import sync as sync_jobs
from coop.members.models import Member
from coop.types import clock, utcnow
from coop.vault import Vault
from tests.fakes.blog import Blog
from tests.fakes.server import LiveServer

LOOPBACK = (ipaddress.ip_network("127.0.0.1/32"),)


def withdrawing_after(connector: type, kind: str) -> type:
    """`connector` with the member withdrawing right after the engine committed the first
    batch holding a record of `kind` (as a disconnect from another request would): set the
    instance's `withdraw` to the coroutine function that withdraws."""

    class Withdrawing(connector):  # type: ignore[misc, valid-type]
        withdraw: Callable[[], Awaitable[None]] | None = None

        async def sync(
            self, ctx: spec.SyncContext, cursor: str | None
        ) -> AsyncIterator[spec.SyncBatch]:
            async for batch in super().sync(ctx, cursor):
                yield batch
                if self.withdraw and any(r.kind == kind for r in batch.records):
                    await self.withdraw()
                    self.withdraw = None

    Withdrawing.__name__ = f"{connector.__name__}WithdrawnAfter{kind.title()}"
    return Withdrawing


def allow_loopback(settings: Settings) -> Settings:
    return dataclasses.replace(settings, outbound_allow=LOOPBACK, scheduler=False)


async def make_member(vault: Vault) -> uuid.UUID:
    """A member row and data key, without going through sign-up."""
    member_id = uuid.uuid4()
    now = utcnow()
    await Member.create(
        id=member_id,
        email_index=uuid.uuid4().hex,
        email_sealed=b"-",
        handle_sealed=b"-",
        password_hash="-",
        created_at=now,
        password_changed_at=now,
    )
    await vault.create_key(member_id)
    return member_id


class FakeSleep:
    """Injected instead of asyncio.sleep: records each delay and moves the clock instead."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        clock.advance(seconds)


@pytest.fixture
def fake_sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
async def jobs(
    settings: Settings, vault: Vault, fake_sleep: FakeSleep, db: str
) -> AsyncIterator[sync_jobs.Jobs]:
    bundle = sync_jobs.setup(settings, vault, sleep=fake_sleep, rand=lambda: 1.0)
    yield bundle
    await bundle.queue.close()


@pytest.fixture
async def member(vault: Vault, db: str) -> uuid.UUID:
    return await make_member(vault)


@pytest.fixture
def blog() -> Blog:
    return Blog()


@pytest.fixture
def blog_server(blog: Blog) -> Iterator[LiveServer]:
    with LiveServer(blog.app()) as server:
        yield server


def scan_rows(rows: list[dict[str, Any]], needle: str) -> bool:
    """True when `needle` appears in any column of any row (text or bytes)."""
    raw = needle.encode()
    for row in rows:
        for value in row.values():
            if isinstance(value, bytes | bytearray | memoryview) and raw in bytes(value):
                return True
            if isinstance(value, str) and needle in value:
                return True
    return False
