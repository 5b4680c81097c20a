"""Static files: versioned URLs cached for a year, others revalidated; compressed on request;
pages (which carry the CSRF token) are never compressed."""

from __future__ import annotations

import re

import httpx
import pytest

from coop.web.routes import STATIC_DIR
from coop.web.templating import static_url

pytestmark = pytest.mark.usefixtures("db")


async def test_a_page_links_the_stylesheet_by_its_versioned_url(client: httpx.AsyncClient) -> None:
    page = await client.get("/login")
    assert f'href="{static_url("coop.css")}"' in page.text


async def test_a_versioned_url_is_cached_for_a_year(client: httpx.AsyncClient) -> None:
    response = await client.get(static_url("coop.css"))
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"


@pytest.mark.parametrize("query", ["", "?v=0123456789ab", "?v="])
async def test_an_unversioned_or_stale_url_is_revalidated(
    client: httpx.AsyncClient, query: str
) -> None:
    response = await client.get("/static/coop.css" + query)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-cache"


async def test_static_files_are_compressed_when_the_browser_accepts_it(
    client: httpx.AsyncClient,
) -> None:
    plain = await client.get(static_url("coop.css"), headers={"accept-encoding": "identity"})
    packed = await client.get(static_url("coop.css"), headers={"accept-encoding": "gzip"})
    assert "content-encoding" not in plain.headers
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.content == plain.content  # httpx decodes: the same stylesheet
    assert int(packed.headers["content-length"]) < len(plain.content)


async def test_pages_are_never_compressed(client: httpx.AsyncClient) -> None:
    page = await client.get("/login", headers={"accept-encoding": "gzip"})
    assert page.status_code == 200
    assert "content-encoding" not in page.headers
    assert page.headers["cache-control"] == "no-store"


async def test_a_missing_static_file_is_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/static/nothing.css")).status_code == 404


def test_the_stylesheet_closes_every_block() -> None:
    """An unclosed rule silently swallows every rule after it (it once hid the disclosure
    level and run-state styles)."""
    css = re.sub(r"/\*.*?\*/", "", (STATIC_DIR / "coop.css").read_text(), flags=re.S)
    depth = 0
    for line_number, line in enumerate(css.splitlines(), 1):
        depth += line.count("{") - line.count("}")
        assert depth >= 0, f"coop.css line {line_number} closes a block never opened"
        if line and not line[0].isspace() and line[0] not in "}@" and "{" in line:
            assert depth == 1, f"coop.css line {line_number} opens a rule inside another"
    assert depth == 0
