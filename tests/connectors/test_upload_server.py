"""A large archive uploaded to a real `coop serve` (issue 12 part 4): /healthz keeps answering
while it is read, and the server's peak memory grows by far less than the posts file."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from tests.api.test_hostile_server import served  # noqa: F401  (fixture)
from tests.connectors.test_archive import make_zip
from tests.e2e.conftest import STARTUP_SECONDS
from tests.web.journeys import log_in_new_member, page_token

POSTS = 60_000

# Building, reading and sealing the posts takes about 30 CPU-seconds (test and server), and
# the fixture starts three Python processes; on a machine loaded 10-20 deep they get a
# fraction of a core: the bounds are generous, not endless.
UPLOAD_SECONDS = 600
pytestmark = pytest.mark.timeout(UPLOAD_SECONDS + 3 * STARTUP_SECONDS)


def peak_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        line = next(x for x in status if x.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def large_outbox() -> bytes:
    items = [
        {
            "type": "Create",
            "object": {
                "type": "Note",
                "id": f"https://social.example/users/me/statuses/{n}",
                "published": f"2026-{1 + n % 12:02d}-{1 + n % 28:02d}T10:00:00Z",
                "content": f"<p>Toot {n} " + "and some words " * 30 + "</p>",
                "replies": {"totalItems": n % 5},
            },
        }
        for n in range(POSTS)
    ]
    return json.dumps({"orderedItems": items}).encode()


async def test_a_large_upload_is_read_while_health_answers_within_a_memory_bound(
    served: tuple[str, str, int],  # noqa: F811
) -> None:
    base, _, pid = served
    outbox = large_outbox()
    archive = make_zip({"outbox.json": outbox})
    answered = 0
    done = asyncio.Event()

    async def poll_health(client: httpx.AsyncClient) -> None:
        nonlocal answered
        while not done.is_set():
            assert (await client.get(base + "/healthz")).status_code == 200
            answered += 1

    timeout = httpx.Timeout(UPLOAD_SECONDS)
    async with (
        httpx.AsyncClient(base_url=base, timeout=timeout) as member,
        httpx.AsyncClient(timeout=timeout) as health,
    ):
        await log_in_new_member(member)
        token = await page_token(member, "/connectors")
        before = peak_rss(pid)
        poller = asyncio.create_task(poll_health(health))
        await asyncio.sleep(0)
        start = answered
        response = await member.post(
            "/connectors/archive/upload",
            data={"csrf_token": token},
            files={"archive": ("a.zip", archive, "application/zip")},
        )
        during = answered - start
        done.set()
        await poller
        assert response.status_code == 303, response.text
        page = (await member.get(response.headers["location"])).text
    assert f"<dd>{POSTS}</dd>" in page  # the records count
    assert during >= 10  # health kept answering while the archive was read and stored
    grown = peak_rss(pid) - before
    # Parsed whole, the 39 MB posts file alone would take several times its size; streamed,
    # the peak grows by the upload, a batch of records and the reader's few MiB.
    assert grown < len(outbox) // 2
