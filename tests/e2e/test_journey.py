"""The member journey of issue 8, in real Chromium against a real `coop serve` process.

sign up -> connect a feed (fake blog on loopback) and upload an archive -> enable both
reference scorers -> see scores with explanations -> a third-party app (docs/examples) asks
for `score:reach` -> consent with fewer scopes and 30 days -> the app reads the score -> the
member sees the read in the access log -> revoke -> the app is refused -> export downloads a
complete archive -> delete account -> logging in fails and the app's token is dead.

Set COOP_E2E_SCREENSHOTS=<folder> to save screenshots of the main pages (docs/img is the
README's tour).
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.e2e.conftest import CoopServer
from tests.fakes.blog import Blog
from tests.fakes.server import LiveServer, free_port

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "coop_client_app.py"
PASSWORD = "correct horse battery staple"
CANARY = "Zanzibar-canary-7431"

pytestmark = pytest.mark.timeout(240)


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("coop_client_app", EXAMPLE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def mastodon_archive(now: datetime) -> bytes:
    """A Mastodon export: outbox.json with notes that were liked, boosted and replied to."""
    items = []
    for i in range(12):
        published = (now - timedelta(days=3 + 7 * i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        items.append(
            {
                "type": "Create",
                "published": published,
                "object": {
                    "id": f"https://social.example/users/me/statuses/{1000 + i}",
                    "type": "Note",
                    "published": published,
                    "content": f"<p>{CANARY} note {i}</p>",
                    "likes": {"totalItems": 5 + i},
                    "shares": {"totalItems": i % 4},
                    "replies": {"totalItems": i % 3},
                },
            }
        )
    outbox = {"type": "OrderedCollection", "totalItems": len(items), "orderedItems": items}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("outbox.json", json.dumps(outbox))
    return buf.getvalue()


@contextmanager
def seeded_blog() -> Iterator[tuple[LiveServer, Blog]]:
    """The member's blog on loopback: six posts over the last seven weeks."""
    feed = Blog()
    now = datetime.now(UTC)
    for i in range(6):
        feed.add_post(
            f"{CANARY} post {i}", body="<p>hello</p>", published=now - timedelta(days=i * 9 + 1)
        )
    with LiveServer(feed.app()) as server:
        yield server, feed


@contextmanager
def running_example_app(
    coop_server: CoopServer, *, name: str, scope: str, extra: tuple[str, ...] = ()
) -> Iterator[tuple[LiveServer, dict[str, Any]]]:
    """The example third-party app (docs/examples), registered by the operator's CLI
    (`extra`: more `coop app create` arguments)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    created = coop_server.coop(
        "app", "create", "--name", name, "--redirect-uri", f"{base}/callback", *extra
    )
    client = json.loads(created.stdout)
    app = load_example().build_app(
        issuer=coop_server.base_url,
        client_id=client["client_id"],
        client_secret=client["client_secret"],
        base_url=base,
        scope=scope,
    )
    with LiveServer(app, port=port) as server:
        yield server, client


@pytest.fixture
def blog() -> Iterator[tuple[LiveServer, Blog]]:
    with seeded_blog() as served:
        yield served


@pytest.fixture
def example_app(coop_server: CoopServer) -> Iterator[tuple[LiveServer, dict[str, Any]]]:
    with running_example_app(
        coop_server, name="Example Scores", scope="profile score:reach score:reach:history"
    ) as running:
        yield running


async def shot(page: Page, name: str) -> None:
    folder = os.environ.get("COOP_E2E_SCREENSHOTS")
    if folder:
        os.makedirs(folder, exist_ok=True)
        await page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


async def nav(page: Page, name: str) -> None:
    """Follow a link of the main navigation (the names are a UI contract)."""
    await page.get_by_role("navigation", name="Main").get_by_role("link", name=name).click()


async def sign_up_and_log_in(page: Page, email: str) -> None:
    await page.goto("/signup")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign up").click()
    await expect(page).to_have_url(re.compile(r"/login"))
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("button", name="Log out")).to_be_visible()


async def test_member_journey_from_sign_up_to_deletion(
    page: Page,
    coop_server: CoopServer,
    blog: tuple[LiveServer, Blog],
    example_app: tuple[LiveServer, dict[str, Any]],
    tmp_path: Path,
) -> None:
    app_server, _client = example_app
    blog_server, feed = blog
    email = f"journey-{os.getpid()}@example.org"
    await sign_up_and_log_in(page, email)

    # Connect a feed and upload an archive: nothing is read before this explicit step.
    await nav(page, "Connectors")
    await expect(page.get_by_role("heading", name="Connectors", level=1)).to_be_visible()
    await shot(page, "connectors")
    await page.get_by_label("Feed URL").fill(blog_server.url("/rss.xml"))
    await page.locator("#connect-feed").get_by_role("button", name="Connect").click()
    archive = tmp_path / "mastodon-export.zip"
    archive.write_bytes(mastodon_archive(datetime.now(UTC)))
    await page.goto("/connectors")
    await page.get_by_label("Archive file (ZIP)").set_input_files(str(archive))
    await page.locator("#connect-archive").get_by_role("button", name="Connect").click()
    await page.goto("/connectors")
    # Both connections sync (the feed in the background): wait until both are OK.
    rows = page.locator("main table tbody tr")
    for _ in range(50):
        texts = await rows.all_inner_texts()
        if len(texts) == 2 and all("\tOK\t" in t for t in texts):
            break
        await page.wait_for_timeout(200)
        await page.reload()
    feed_row = next(t for t in texts if "rss.xml" in t)
    archive_row = next(t for t in texts if "archive" in t.lower())
    assert "\t6\t" in feed_row and "\t12\t" in archive_row, texts

    # Enable both reference scorers; each shows what it reads first.
    await nav(page, "Scorers")
    for name in ("reach", "cadence"):
        await page.locator(f"#scorer-{name}").get_by_role("button", name="Enable").click()
        await expect(
            page.locator(f"#scorer-{name}").get_by_role("button", name="Disable")
        ).to_be_visible()
    await shot(page, "scorers")

    # The dashboard shows both scores with their explanations.
    await nav(page, "Scores")
    main = page.locator("main")
    for _ in range(50):
        text = await main.inner_text()
        if "Reach" in text and "Cadence" in text and "No scores" not in text:
            break
        await page.wait_for_timeout(200)
        await page.reload()
    await expect(main).to_contain_text("This is the first score")

    # The member publishes a new post and syncs: the score moves, and says why.
    feed.add_post(f"{CANARY} fresh post", body="<p>news</p>", published=datetime.now(UTC))
    await nav(page, "Connectors")
    await page.get_by_role("link", name="Blog feed (RSS or Atom)").click()
    await page.get_by_role("button", name="Sync now").click()
    await nav(page, "Scores")
    for _ in range(50):
        if "new data" in await main.inner_text():
            break
        await page.wait_for_timeout(200)
        await page.reload()
    await expect(main).to_contain_text("new data")
    await expect(main.locator("svg").first).to_be_visible()
    await shot(page, "scores")
    await page.goto("/scores/reach")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Reach")
    await shot(page, "score-detail")

    # A third-party app asks for profile + reach + reach history; the member grants only
    # `score:reach`, for 30 days.
    await page.goto(app_server.url("/login"))
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Example Scores")
    await shot(page, "consent")
    await page.get_by_label(re.compile(r"\(profile\)")).uncheck()
    await page.get_by_label(re.compile(r"\(score:reach:history\)")).uncheck()
    await page.get_by_label("30 days").check()
    await page.get_by_role("button", name="Allow").click()
    await expect(page).to_have_url(re.compile(re.escape(app_server.url("/callback"))))
    granted = json.loads(await page.locator("body").inner_text())
    assert granted["scope"] == "score:reach"

    # The app reads the score; the member sees that read in the access log.
    async with httpx.AsyncClient(timeout=20) as http:
        answer = (await http.get(app_server.url("/score"))).json()
    score = answer["data"]["viewer"]["score"]
    assert 0 <= score["value"] <= 100 and score["explanation"]["reasons"]
    await page.goto(coop_server.url("/access-log"))
    await expect(page.locator("main")).to_contain_text("Example Scores")
    await expect(page.locator("main")).to_contain_text("score:reach")
    await shot(page, "access-log")

    # Revoke: the app is refused on its very next request.
    await nav(page, "Apps")
    await shot(page, "apps")
    await page.get_by_role("button", name="Revoke").first.click()
    async with httpx.AsyncClient(timeout=20) as http:
        refused = await http.get(app_server.url("/score"))
    assert refused.status_code == 401

    # Grant again, so that deletion can be shown to kill a live token too.
    await page.goto(app_server.url("/login"))
    await page.get_by_role("button", name="Allow").click()
    await expect(page).to_have_url(re.compile(re.escape(app_server.url("/callback"))))

    # Export downloads a complete archive.
    await page.goto(coop_server.url("/account/export"))
    async with page.expect_download() as download_info:
        await page.get_by_role("button", name="Export my data").click()
    download = await download_info.value
    assert re.fullmatch(r"coop-export-\d{4}-\d{2}-\d{2}\.zip", download.suggested_filename)
    saved = tmp_path / download.suggested_filename
    await download.save_as(saved)
    with zipfile.ZipFile(saved) as zf:
        names = zf.namelist()
        everything = b"".join(zf.read(n) for n in names)
    assert CANARY.encode() in everything
    assert email.encode() in everything
    assert any(n.endswith(".schema.json") for n in names) and "README.md" in names

    # Delete the account: one confirmation, then it is gone.
    await page.goto(coop_server.url("/account/delete"))
    await shot(page, "delete")
    await page.get_by_role("button", name="Delete my account").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text(re.compile("deleted", re.I))
    await page.goto(coop_server.url("/login"))
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.locator("main")).to_contain_text("Email or password is incorrect.")
    async with httpx.AsyncClient(timeout=20) as http:
        dead = await http.get(app_server.url("/score"))
        check = (await http.get(app_server.url("/check"))).json()
    assert dead.status_code == 401
    assert check["active"] is False
