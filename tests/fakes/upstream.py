"""Plumbing shared by the fake OAuth providers: a request log and scripted faults.

A fake records every request it receives (method, path, query, form) so tests can assert on
what coop sent upstream, e.g. that no token request followed a forged callback. Faults are
queued responses (429, 5xx, 401, a malformed body, a slow answer) that replace the next
matching request's real answer.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    query: Mapping[str, str]
    form: Mapping[str, str]
    headers: Mapping[str, str]


@dataclass
class Fault:
    """A canned answer for the next `times` requests whose path starts with `path`."""

    status: int
    path: str = "/"
    times: int = 1
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b'{"error":"fault"}'
    delay: float = 0.0


class RequestLog:
    """Thread-safe: the fake appends from its server thread, the test reads from its own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[LoggedRequest] = []

    def append(self, item: LoggedRequest) -> None:
        with self._lock:
            self._items.append(item)

    def all(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._items)

    def paths(self, method: str | None = None) -> list[str]:
        return [r.path for r in self.all() if method is None or r.method == method]

    def to(self, path: str, method: str | None = None) -> list[LoggedRequest]:
        return [
            r
            for r in self.all()
            if r.path.startswith(path) and (method is None or r.method == method)
        ]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class FaultQueue:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def take(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if path.startswith(fault.path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None


async def record(request: Request, log: RequestLog) -> Mapping[str, str]:
    """Log the request and return its form fields (or JSON object fields) as strings."""
    form: dict[str, str] = {}
    content_type = request.headers.get("content-type", "")
    if request.method in {"POST", "PUT", "PATCH", "DELETE"}:
        if content_type.startswith("application/json"):
            try:
                data: Any = await request.json()
            except ValueError:
                data = {}
            if isinstance(data, dict):
                form = {k: _as_str(v) for k, v in data.items()}
        elif content_type.startswith(("application/x-www-form-urlencoded", "multipart/")):
            parsed = await request.form()
            form = {k: str(v) for k, v in parsed.multi_items()}
    log.append(
        LoggedRequest(
            method=request.method,
            path=request.url.path,
            query=dict(request.query_params),
            form=form,
            headers={k.lower(): v for k, v in request.headers.items()},
        )
    )
    return form


def _as_str(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value)


async def fault_response(faults: FaultQueue, path: str) -> Response | None:
    fault = faults.take(path)
    if fault is None:
        return None
    if fault.delay:
        await asyncio.sleep(fault.delay)
    return Response(
        fault.body,
        status_code=fault.status,
        headers=dict(fault.headers),
        media_type="application/json",
    )


# -- driving a connector without the engine ------------------------------------------------


@dataclass
class ContextHarness:
    """A real SyncContext over the SSRF-guarded outbound client (loopback allow-listed), with
    the credentials store and the "still wanted" switch the engine would provide."""

    config: dict[str, str]
    credentials: dict[str, str]
    saved: list[dict[str, str]] = field(default_factory=list)
    wanted: bool = True
    events: list[str] = field(default_factory=list)
    on_save: Callable[[Mapping[str, str]], None] | None = None

    def context(self, http: Any) -> Any:
        from coop.connectors import spec
        from coop.types import utcnow

        async def save_credentials(new: Mapping[str, str]) -> None:
            if self.on_save is not None:
                self.on_save(new)
            self.events.append("saved")
            self.saved.append(dict(new))
            self.credentials = dict(new)

        async def still_wanted() -> bool:
            return self.wanted

        return spec.SyncContext(
            http=http,
            config=dict(self.config),
            credentials=dict(self.credentials),
            now=utcnow(),
            save_credentials=save_credentials,
            still_wanted=still_wanted,
        )


def loopback_client() -> Any:
    """The production outbound client with only 127.0.0.1/32 allow-listed, as tests run it."""
    import ipaddress

    from coop.connectors.outbound import Guard, Limits, OutboundClient

    return OutboundClient(
        Guard([ipaddress.ip_network("127.0.0.1/32")]), Limits(connect=2, read=2, total=5)
    )


@dataclass
class Drain:
    """Drains a connector's sync like the engine: records of every yielded batch and the last
    cursor (kept when the run raises half-way, as the engine would have committed them)."""

    cursor: str | None = None
    records: list[Any] = field(default_factory=list)
    batches: int = 0

    async def run(self, connector: Any, ctx: Any) -> Drain:
        async for batch in connector.sync(ctx, self.cursor):
            self.records.extend(batch.records)
            self.cursor = batch.cursor
            self.batches += 1
        return self

    def of_kind(self, kind: str) -> list[Any]:
        return [r for r in self.records if r.kind == kind]


# -- the browser's side of an OAuth dance ----------------------------------------------------


def upstream_url_of(response: Any) -> str:
    """The provider URL a "Connect" post sends the browser to: a 200 page that navigates by
    itself (Refresh header) and shows the same URL as its "Continue" link."""
    import html
    import re

    assert response.status_code == 200, (response.status_code, response.text)
    refresh = response.headers["refresh"]
    assert refresh.startswith("0; url="), refresh
    url = refresh.removeprefix("0; url=")
    link = re.search(r'id="continue-upstream" href="([^"]+)"', response.text)
    assert link and html.unescape(link.group(1)) == url
    return str(url)


async def approve_upstream(authorize_url: str) -> str:
    """Visit the provider's authorize URL as the member's browser (the fakes approve at once)
    and return the path and query of the redirect back to coop."""
    import httpx

    async with httpx.AsyncClient(trust_env=False) as browser:
        response = await browser.get(authorize_url)
    assert response.status_code == 302, (response.status_code, response.text)
    back = httpx.URL(response.headers["location"])
    return back.raw_path.decode()


async def database_contains(needle: str) -> list[str]:
    """Tables holding `needle` in clear in any column (text or bytes): should be none."""
    from tortoise import Tortoise, connections

    conn = connections.get("default")
    raw = needle.encode()
    hits = []
    for model in Tortoise.apps["models"].values():  # type: ignore[index]
        table = model._meta.db_table
        query = f'SELECT * FROM "{table}"'  # noqa: S608 - table names come from the models
        for row in await conn.execute_query_dict(query):
            for value in row.values():
                as_bytes = (
                    bytes(value) if isinstance(value, bytes | bytearray | memoryview) else b""
                )
                if raw in as_bytes or (isinstance(value, str) and needle in value):
                    hits.append(table)
    return hits


__all__ = [
    "ContextHarness",
    "Drain",
    "Fault",
    "FaultQueue",
    "LoggedRequest",
    "RequestLog",
    "approve_upstream",
    "database_contains",
    "fault_response",
    "loopback_client",
    "record",
    "upstream_url_of",
]
