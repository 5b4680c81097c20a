"""The connector pages as a member uses them: catalogue, connect, health, sync now, disconnect."""

from __future__ import annotations

import io
import json
import re
import uuid
import zipfile
from typing import Any

import httpx

from coop.connectors.models import Connection, Record
from coop.jobs import sync as sync_jobs
from tests.fakes.blog import Blog
from tests.fakes.server import LiveServer
from tests.web.journeys import csrf_token_in, log_in_new_member, page_token, post_form

XSS = "<img src=x onerror=alert(1)>"


def jobs_of(app: Any) -> sync_jobs.Jobs:
    return sync_jobs.get_jobs(app.state.runtime)


def connection_id_from(response: httpx.Response) -> uuid.UUID:
    assert response.status_code == 303, response.text
    match = re.fullmatch(r"/connections/([0-9a-f-]{36})", response.headers["location"])
    assert match, response.headers["location"]
    return uuid.UUID(match.group(1))


async def connect_feed(client: httpx.AsyncClient, app: Any, url: str) -> uuid.UUID:
    response = await post_form(client, "/connectors/feed/connect", {"url": url}, page="/connectors")
    connection_id = connection_id_from(response)
    await jobs_of(app).queue.drain()
    return connection_id


async def test_the_catalogue_needs_a_login(client: httpx.AsyncClient) -> None:
    response = await client.get("/connectors")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")


async def test_the_catalogue_says_what_each_connector_reads_and_never_reads(
    client: httpx.AsyncClient,
) -> None:
    await log_in_new_member(client)
    page = (await client.get("/connectors")).text
    assert "Blog feed (RSS or Atom)" in page
    assert "posts you published, with their reaction counts" in page
    assert "comments or the names of people who comment" in page
    assert '<label for="feed-url">Feed URL</label>' in page
    assert "Archive upload (Mastodon or X/Twitter)" in page
    assert page.count(">Connect</button>") >= 2
    assert "You have not connected anything yet." in page


async def test_connecting_a_feed_shows_its_health_and_escapes_upstream_text(
    client: httpx.AsyncClient, app: Any, blog: Blog, blog_server: LiveServer
) -> None:
    await log_in_new_member(client)
    blog.add_post("&lt;img src=x onerror=alert(1)&gt;")
    connection_id = await connect_feed(client, app, blog_server.url("/rss.xml?t=" + XSS))

    page = (await client.get(f"/connections/{connection_id}")).text
    assert "Connected. The first sync has started." in page
    assert ">OK</strong>" in page
    assert "<dt>Records collected</dt>\n    <dd>1</dd>" in page
    assert XSS not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "Sync now" in page and "Disconnect" in page
    listing = (await client.get("/connectors")).text
    assert f'href="/connections/{connection_id}"' in listing


async def test_a_failing_feed_shows_the_reason_in_plain_words(
    client: httpx.AsyncClient, app: Any, blog_server: LiveServer
) -> None:
    await log_in_new_member(client)
    connection_id = await connect_feed(client, app, blog_server.url("/billion-laughs.xml"))
    page = (await client.get(f"/connections/{connection_id}")).text
    assert ">Failing</strong>" in page
    assert "The feed uses unsafe XML (entity declarations) and was refused." in page
    assert "(unsafe_xml)" in page
    listing = (await client.get("/connectors")).text
    assert "The feed uses unsafe XML (entity declarations) and was refused." in listing


async def test_a_connection_needing_reauthorization_offers_reconnect(
    client: httpx.AsyncClient, app: Any, blog: Blog, blog_server: LiveServer
) -> None:
    await log_in_new_member(client)
    connection_id = await connect_feed(client, app, blog_server.url("/rss.xml"))
    await Connection.filter(id=connection_id).update(
        status="needs_reauthorization", status_reason="Reconnect to resume."
    )
    page = (await client.get(f"/connections/{connection_id}")).text
    assert ">Needs reconnecting</strong>" in page
    assert ">Reconnect</a>" in page


async def test_connecting_a_private_address_is_refused_on_the_page(
    client: httpx.AsyncClient,
) -> None:
    await log_in_new_member(client)
    response = await post_form(
        client,
        "/connectors/feed/connect",
        {"url": "http://169.254.169.254/latest/meta-data/"},
        page="/connectors",
    )
    assert response.status_code == 400
    assert "(url_not_allowed)" in response.text
    assert await Connection.all().count() == 0


async def test_sync_now_runs_once_and_a_second_click_hears_it_is_running(
    client: httpx.AsyncClient, app: Any, blog: Blog, blog_server: LiveServer
) -> None:
    await log_in_new_member(client)
    blog.add_post("One")
    connection_id = await connect_feed(client, app, blog_server.url("/rss.xml"))
    page = f"/connections/{connection_id}"

    await jobs_of(app).engine.claim(connection_id)  # a run is in progress
    response = await post_form(client, f"{page}/sync", page=page)
    assert response.status_code == 303
    assert "A sync is already running." in (await client.get(page)).text

    await Connection.filter(id=connection_id).update(status="ok", lease_until=None)
    blog.add_post("Two")
    response = await post_form(client, f"{page}/sync", page=page)
    assert response.status_code == 303
    await jobs_of(app).queue.drain()
    assert "Sync started." in (await client.get(page)).text
    assert await Record.filter(connection_id=connection_id).count() == 2


async def test_disconnect_confirms_what_it_deletes_then_deletes_it(
    client: httpx.AsyncClient, app: Any, blog: Blog, blog_server: LiveServer
) -> None:
    await log_in_new_member(client)
    blog.add_post("One")
    blog.add_post("Two")
    connection_id = await connect_feed(client, app, blog_server.url("/rss.xml"))
    confirm = (await client.get(f"/connections/{connection_id}/disconnect")).text
    assert "permanently deletes the\n  <strong>2 records</strong>" in confirm

    response = await client.post(
        f"/connections/{connection_id}/disconnect",
        data={"csrf_token": csrf_token_in(confirm)},
    )
    assert response.status_code == 303
    assert "2 records from this source were deleted" in (await client.get("/connectors")).text
    assert await Record.all().count() == 0
    assert await Connection.all().count() == 0


async def test_another_members_connection_is_not_found(
    client: httpx.AsyncClient, app: Any, blog_server: LiveServer
) -> None:
    await log_in_new_member(client)
    connection_id = await connect_feed(client, app, blog_server.url("/rss.xml"))
    await client.post("/logout", data={"csrf_token": await page_token(client, "/connectors")})
    await log_in_new_member(client)
    assert (await client.get(f"/connections/{connection_id}")).status_code == 404
    token = await page_token(client, "/connectors")
    response = await client.post(
        f"/connections/{connection_id}/disconnect", data={"csrf_token": token}
    )
    assert response.status_code == 404
    assert await Connection.filter(id=connection_id).exists()


async def test_connector_forms_refuse_posts_without_a_csrf_token(
    client: httpx.AsyncClient, blog_server: LiveServer
) -> None:
    await log_in_new_member(client)
    response = await client.post("/connectors/feed/connect", data={"url": blog_server.url("/")})
    assert response.status_code == 403
    assert await Connection.all().count() == 0
    assert (await client.get("/connectors/feed/connect")).status_code == 405


def mastodon_zip() -> bytes:
    outbox = {
        "type": "OrderedCollection",
        "orderedItems": [
            {
                "type": "Create",
                "object": {
                    "type": "Note",
                    "id": "https://social.example/users/me/statuses/1",
                    "published": "2026-10-01T10:00:00Z",
                    "content": "<p>Hello</p>",
                    "replies": {"totalItems": 2},
                    "likes": {"totalItems": 5},
                    "shares": {"totalItems": 1},
                },
            }
        ],
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("outbox.json", json.dumps(outbox))
    return buffer.getvalue()


async def test_uploading_an_archive_from_the_page_reads_it(client: httpx.AsyncClient) -> None:
    await log_in_new_member(client)
    token = await page_token(client, "/connectors")
    response = await client.post(
        "/connectors/archive/upload",
        data={"csrf_token": token},
        files={"archive": ("archive.zip", mastodon_zip(), "application/zip")},
    )
    connection_id = connection_id_from(response)
    page = (await client.get(f"/connections/{connection_id}")).text
    assert "Your archive was read." in page
    assert "Sync now" not in page and "Upload a newer archive" in page
    assert "Hello · " in page
    assert all(f in page for f in ("2 replies", "5 favourites", "1 reblogs"))


async def test_uploading_a_zip_slip_archive_is_refused(client: httpx.AsyncClient) -> None:
    await log_in_new_member(client)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../../evil.txt", "x")
        archive.writestr("outbox.json", "{}")
    token = await page_token(client, "/connectors")
    response = await client.post(
        "/connectors/archive/upload",
        data={"csrf_token": token},
        files={"archive": ("a.zip", buffer.getvalue(), "application/zip")},
    )
    assert response.status_code == 422
    assert "(unsafe_archive_member)" in response.text
    assert await Connection.all().count() == 0


async def test_archive_uploads_may_exceed_the_ordinary_body_limit(
    client: httpx.AsyncClient,
) -> None:
    await log_in_new_member(client)
    padding = bytes(range(256)) * (8 * 1024)  # 2 MB, stored: over COOP_MAX_BODY_BYTES
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("outbox.json", json.dumps({"orderedItems": []}))
        archive.writestr("media/padding.bin", padding)
    token = await page_token(client, "/connectors")
    response = await client.post(
        "/connectors/archive/upload",
        data={"csrf_token": token},
        files={"archive": ("a.zip", buffer.getvalue(), "application/zip")},
    )
    assert response.status_code == 303
    elsewhere = await client.post(
        "/connectors/feed/connect",
        data={"csrf_token": token},
        files={"archive": ("a.zip", buffer.getvalue(), "application/zip")},
    )
    assert elsewhere.status_code == 413


async def test_an_unconfigured_github_says_so_instead_of_offering_connect(
    client: httpx.AsyncClient,
) -> None:
    """The default settings have no GitHub client: the catalogue explains, no dead button."""
    await log_in_new_member(client)
    page = (await client.get("/connectors")).text
    github = page[page.index('id="connect-github"') :].split("</section>", 1)[0]
    assert "GitHub is not available on this coop yet" in github
    assert "Connect</button>" not in github
    assert 'action="/connectors/github/connect"' not in github


async def test_a_configured_github_offers_connect(settings: Any, db: str) -> None:
    import dataclasses

    from coop.app import build_app

    configured = dataclasses.replace(
        settings, github_client_id="Iv1.abc", github_client_secret="s3cret"
    )
    transport = httpx.ASGITransport(app=build_app(configured, manage_db=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
        await log_in_new_member(c)
        page = (await c.get("/connectors")).text
    github = page[page.index('id="connect-github"') :].split("</section>", 1)[0]
    assert 'action="/connectors/github/connect"' in github
    assert "not available" not in github


async def test_a_feed_address_that_answers_404_says_so_and_when_coop_tries_again(
    client: httpx.AsyncClient, app: Any, blog_server: LiveServer
) -> None:
    """No contradiction: the page says what the source answered, that coop tries again at the
    next sync (which it shows), and what the member can do."""
    await log_in_new_member(client)
    connection_id = await connect_feed(client, app, blog_server.url("/no-such-feed.xml"))
    page = (await client.get(f"/connections/{connection_id}")).text
    assert ">Failing</strong>" in page
    assert "The source answered with an error (upstream answered 404)." in page
    assert "coop tries again at the next sync" in page
    assert "retrying will not fix" not in page
    assert re.search(r"<dt>Next sync</dt>\s*<dd>\d{4}-\d\d-\d\d", page)
