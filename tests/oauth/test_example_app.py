"""Done-when for issue 5, end to end over real sockets: an app registered with the CLI gets a
token through the consent page using authlib's stock client and discovery only, refreshes
it, the member revokes it in the web UI, and the app's next use is refused.

coop runs as a real `coop serve` process on the test database; the example app from
docs/examples runs as a real uvicorn server; the member's browser is an httpx client that
carries the member's session cookie and the consent page's CSRF token.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from coop.config import Settings
from coop.http.auth import session_cookie_name
from coop.members import sessions
from coop.vault import Vault
from tests.fakes.server import LiveServer, free_port
from tests.oauth.support import make_member

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "coop_client_app.py"

pytestmark = pytest.mark.timeout(120)


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("coop_client_app", EXAMPLE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def coop_env(settings: Settings, database_url: str, port: int, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COOP_")}
    assert settings.master_key and settings.secret_key
    env.update(
        COOP_DATABASE_URL=database_url,
        COOP_DATA_DIR=str(data_dir),
        COOP_MASTER_KEY=settings.master_key,
        COOP_SECRET_KEY=settings.secret_key,
        COOP_ISSUER=f"http://127.0.0.1:{port}",
        COOP_RATE_LIMIT="0",
    )
    return env


@pytest.fixture
def coop_server(
    settings: Settings, db: str, tmp_path: Path
) -> Iterator[tuple[str, dict[str, str]]]:
    port = free_port()
    env = coop_env(settings, db, port, tmp_path / "server")
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "coop", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
            time.sleep(0.1)
        yield base, env
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def register_by_cli(env: dict[str, str], redirect_uri: str) -> dict[str, str]:
    result = subprocess.run(
        [sys.executable, "-m", "coop", "app", "create", "--name", "Example App",
         "--redirect-uri", redirect_uri, "--homepage", "https://example.org"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    info: dict[str, str] = json.loads(result.stdout)
    return info


async def test_example_app_gets_refreshes_and_loses_access_when_the_member_revokes(
    coop_server: tuple[str, dict[str, str]], settings: Settings, vault: Vault
) -> None:
    coop_url, env = coop_server
    app_port = free_port()
    app_url = f"http://127.0.0.1:{app_port}"
    info = register_by_cli(env, f"{app_url}/callback")
    example = load_example().build_app(
        issuer=coop_url,
        client_id=info["client_id"],
        client_secret=info["client_secret"],
        base_url=app_url,
        scope="profile score:reach",
    )
    member = await make_member(vault)
    _, session_token = await sessions.start(
        vault=vault, settings=settings, member=member, user_agent="e2e"
    )
    with LiveServer(example, port=app_port):
        async with httpx.AsyncClient(timeout=10) as browser:
            browser.cookies.set(session_cookie_name(settings), session_token, domain="127.0.0.1")

            # The app sends the member to coop's authorization endpoint (from discovery).
            start = await browser.get(f"{app_url}/login")
            assert start.status_code == 302
            authorize_url = start.headers["location"]
            assert authorize_url.startswith(f"{coop_url}/oauth/authorize?")
            assert "code_challenge_method=S256" in authorize_url

            # The member reads the consent page, grants less than asked, and presses "Allow".
            page = await browser.get(authorize_url)
            assert page.status_code == 200 and "Example App" in page.text
            fields = dict(
                re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text)
            )
            form = {k: v.replace("&amp;", "&") for k, v in fields.items()}
            form.update(decision="allow", grant_scope="profile", lifetime="30d")
            decision = await browser.post(
                f"{coop_url}/oauth/authorize", data=form, headers={"Origin": coop_url}
            )
            assert decision.status_code == 303
            callback = decision.headers["location"]
            assert callback.startswith(f"{app_url}/callback?")

            # Back at the app: authlib redeems the code with the PKCE verifier.
            done = await browser.get(callback)
            assert done.status_code == 200, done.text
            assert done.json() == {"scope": "profile", "expires_in": 3600}
            assert (await browser.get(f"{app_url}/check")).json()["active"] is True

            # The app refreshes (rotation: it keeps only the newest refresh token), asking for
            # what was granted, not for what it first asked.
            refreshed = await browser.post(f"{app_url}/refresh")
            assert refreshed.status_code == 200, refreshed.text
            assert refreshed.json()["scope"] == "profile"
            assert (await browser.get(f"{app_url}/check")).json()["active"] is True

            # The member revokes the app on /apps.
            apps_page = await browser.get(f"{coop_url}/apps")
            assert "Example App" in apps_page.text
            action = re.search(r'action="(/apps/grants/[^"]+/revoke)"', apps_page.text)
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', apps_page.text)
            assert action and csrf
            revoked = await browser.post(
                coop_url + action.group(1),
                data={"csrf_token": csrf.group(1)},
                headers={"Origin": coop_url},
            )
            assert revoked.status_code == 303

            # The app's very next use is refused, and so is its refresh.
            assert (await browser.get(f"{app_url}/check")).json()["active"] is False
            again = await browser.post(f"{app_url}/refresh")
            assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
