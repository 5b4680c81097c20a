"""Concurrent archive uploads are bounded per process (issue 12 part 4): when every slot is
reading an archive, the next upload is a 503 with Retry-After and nothing is stored."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import httpx

from coop.config import Settings
from coop.connectors.models import Connection, Record
from coop.web.connectors import UploadSlots
from tests.connectors.test_web_connectors import mastodon_zip
from tests.web.journeys import log_in_new_member, page_token


async def _upload(client: httpx.AsyncClient, data: bytes) -> httpx.Response:
    token = await page_token(client, "/connectors")
    return await client.post(
        "/connectors/archive/upload",
        data={"csrf_token": token},
        files={"archive": ("a.zip", data, "application/zip")},
    )


async def test_an_upload_past_the_concurrent_bound_is_503_and_stores_nothing(
    client: httpx.AsyncClient, app: Any, settings: Settings
) -> None:
    await log_in_new_member(client)
    slots = app.state.upload_slots = UploadSlots(settings.max_concurrent_uploads)
    with ExitStack() as busy:
        for _ in range(settings.max_concurrent_uploads):  # uploads being read right now
            busy.enter_context(slots.take())
        refused = await _upload(client, mastodon_zip())
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "30"
        assert "<code>uploads_busy</code>" in refused.text
        assert "Other archives are being read right now." in refused.text
        assert await Connection.all().count() == 0
        assert await Record.all().count() == 0
    accepted = await _upload(client, mastodon_zip())
    assert accepted.status_code == 303
    assert slots.free == settings.max_concurrent_uploads  # given back after a success


async def test_a_refused_archive_gives_its_slot_back(
    client: httpx.AsyncClient, app: Any, settings: Settings
) -> None:
    await log_in_new_member(client)
    slots = app.state.upload_slots = UploadSlots(1)
    for _ in range(3):
        refused = await _upload(client, b"not a zip")
        assert refused.status_code == 422
    assert slots.free == 1


def test_the_bound_is_a_setting() -> None:
    assert Settings.from_env({}).max_concurrent_uploads == 2
    assert Settings.from_env({"COOP_MAX_CONCURRENT_UPLOADS": "5"}).max_concurrent_uploads == 5
