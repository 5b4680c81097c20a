"""Uploading Facebook, Instagram and LinkedIn exports from the Connectors page."""

from __future__ import annotations

import httpx
import pytest

from coop.connectors.models import Connection
from tests.connectors.exports import facebook_export, instagram_export, linkedin_export, make_zip
from tests.web.journeys import log_in_new_member, page_token


async def upload(client: httpx.AsyncClient, name: str, data: bytes) -> httpx.Response:
    token = await page_token(client, "/connectors")
    return await client.post(
        f"/connectors/{name}/upload",
        data={"csrf_token": token},
        files={"archive": (f"{name}.zip", data, "application/zip")},
    )


async def test_the_catalogue_says_what_each_export_reads_before_any_upload(
    client: httpx.AsyncClient,
) -> None:
    await log_in_new_member(client)

    page = (await client.get("/connectors")).text

    for name in ("facebook", "instagram", "linkedin"):
        assert f'id="upload-{name}"' in page
    assert "messages, friends, followers and following lists, contacts" in page
    assert "names or handles of other people" in page


@pytest.mark.parametrize(
    ("name", "data", "shown"),
    [
        ("facebook", facebook_export(), "Un café au soleil ☀ 😀 · 1 photos"),
        ("instagram", instagram_export(), "Mein Reel · 1 videos"),
        ("linkedin", linkedin_export(), "A post with a link · 1 links · 1 media"),
    ],
)
async def test_uploading_an_export_from_the_page_reads_it(
    client: httpx.AsyncClient, name: str, data: bytes, shown: str
) -> None:
    await log_in_new_member(client)

    response = await upload(client, name, data)

    assert response.status_code == 303, response.text
    page = (await client.get(response.headers["location"])).text
    assert "Your archive was read." in page
    assert shown in page
    [connection] = await Connection.all()
    assert connection.connector == name


async def test_a_hostile_export_is_refused_on_the_page_with_its_code(
    client: httpx.AsyncClient,
) -> None:
    await log_in_new_member(client)

    slip = await upload(client, "instagram", make_zip({"../../evil": "x"}))
    bomb = await upload(
        client, "linkedin", make_zip({"Shares.csv": b"Date," + b" " * (64 * 1024 * 1024)})
    )

    assert slip.status_code == 422 and "(unsafe_archive_member)" in slip.text
    assert bomb.status_code == 413 and "(archive_too_large)" in bomb.text
    assert await Connection.all().count() == 0
