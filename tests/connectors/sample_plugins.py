"""Connector entry-point targets for registry tests: one good, several broken."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import ClassVar

from coop.connectors import spec


class GoodConnector:
    api_version: ClassVar[int] = spec.API_VERSION
    name: ClassVar[str] = "good"
    title: ClassVar[str] = "Good"
    description: ClassVar[str] = "Works."
    reads: ClassVar[tuple[str, ...]] = (spec.POST, spec.AUDIENCE)
    never_reads: ClassVar[tuple[str, ...]] = ("your messages",)
    auth: ClassVar[spec.AuthMethod] = "url"
    configured: ClassVar[dict[str, str]] = {}

    def configure(self, env: dict[str, str]) -> None:
        type(self).configured = dict(env)

    async def sync(
        self, ctx: spec.SyncContext, cursor: str | None
    ) -> AsyncIterator[spec.SyncBatch]:
        yield spec.SyncBatch(records=[], cursor=cursor)


class FutureConnector(GoodConnector):
    api_version: ClassVar[int] = spec.API_VERSION + 1
    name: ClassVar[str] = "future"


class UnknownKindConnector(GoodConnector):
    name: ClassVar[str] = "kinds"
    reads: ClassVar[tuple[str, ...]] = ("contacts",)


class ExplodingConnector(GoodConnector):
    name: ClassVar[str] = "exploding"

    def __init__(self) -> None:
        raise RuntimeError("cannot start")


class NoSyncConnector:
    api_version: ClassVar[int] = spec.API_VERSION
    name: ClassVar[str] = "nosync"
    title: ClassVar[str] = "No sync"
    description: ClassVar[str] = "Forgot the method."
    reads: ClassVar[tuple[str, ...]] = (spec.POST,)
    never_reads: ClassVar[tuple[str, ...]] = ()
    auth: ClassVar[spec.AuthMethod] = "url"
