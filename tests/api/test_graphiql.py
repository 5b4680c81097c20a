"""GraphiQL (dev mode) comes from coop itself: no CDN, the same bytes strawberry's page names."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from coop.app import build_app
from coop.config import Settings

ASSET = re.compile(r'(?:src|href)="([^"]+)"\s+integrity="([^"]+)"')


@pytest.fixture
async def dev_client(settings: Settings, db: str) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(dataclasses.replace(settings, dev=True), manage_db=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
        yield c


async def ide(client: httpx.AsyncClient) -> httpx.Response:
    response = await client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    return response


async def test_the_ide_page_names_no_other_origin(dev_client: httpx.AsyncClient) -> None:
    response = await ide(dev_client)
    assert re.findall(r'(?:src|href)="(https?:[^"]*)"', response.text) == []
    csp = response.headers["content-security-policy"]
    assert "unpkg" not in csp and "https:" not in csp
    assert len(ASSET.findall(response.text)) >= 5


async def test_every_ide_asset_is_served_locally_with_its_integrity_hash(
    dev_client: httpx.AsyncClient,
) -> None:
    for url, integrity in ASSET.findall((await ide(dev_client)).text):
        assert url.startswith("/static/graphiql/"), url
        asset = await dev_client.get(url)
        assert asset.status_code == 200, (
            f"{url} is missing: vendor it as coop/web/static/graphiql/README.md says"
        )
        algorithm, _, expected = integrity.partition("-")
        digest = base64.b64encode(hashlib.new(algorithm, asset.content).digest()).decode()
        assert digest == expected, f"{url} differs from the file strawberry's page names"


async def test_the_ide_is_only_served_in_dev_mode(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 405
