"""The consent page on the real server, in Chromium, for redirect URIs at the edge of the
rules (OA-02, OA-17): an IDNA host gets a CSP the browser accepts; a URI stored before the
rules were strict gets a clean 400, never a 500 or a redirect."""

from __future__ import annotations

import json
import secrets
import sqlite3
from urllib.parse import urlencode

import asyncpg
import pytest
from playwright.async_api import ConsoleMessage, Page, expect

from tests.apps.test_redirect_uris import assert_well_formed_csp
from tests.e2e.conftest import CoopServer
from tests.e2e.test_journey import sign_up_and_log_in
from tests.oauth.support import pkce

pytestmark = pytest.mark.timeout(120)


def register(server: CoopServer, uri: str) -> str:
    result = server.coop("app", "create", "--name", "Edge", "--redirect-uri", uri, "--public")
    client_id: str = json.loads(result.stdout)["client_id"]
    return client_id


def consent_path(client_id: str, uri: str) -> str:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": uri,
        "scope": "profile",
        "state": "s",
        "code_challenge": pkce()[1],
        "code_challenge_method": "S256",
    }
    return f"/oauth/authorize?{urlencode(params)}"


async def store_redirect_uri(server: CoopServer, client_id: str, uri: str) -> None:
    """Write a URI straight into the server's database, as an older coop may have stored it."""
    value = json.dumps([uri])
    if server.database_url.startswith("sqlite://"):
        with sqlite3.connect(server.database_url.removeprefix("sqlite://")) as conn:
            conn.execute("UPDATE app SET redirect_uris = ? WHERE client_id = ?", (value, client_id))
        return
    conn = await asyncpg.connect(server.database_url.replace("postgres://", "postgresql://", 1))
    try:
        await conn.execute(
            "UPDATE app SET redirect_uris = $1::jsonb WHERE client_id = $2", value, client_id
        )
    finally:
        await conn.close()


def csp_complaints(page: Page) -> list[str]:
    found: list[str] = []

    def listen(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            found.append(message.text)

    page.on("console", listen)
    return found


async def test_an_idna_redirect_host_gets_a_consent_page_whose_csp_chromium_accepts(
    page: Page, coop_server: CoopServer
) -> None:
    uri = "https://xn--bcher-kva.example/cb"
    client_id = register(coop_server, uri)
    await sign_up_and_log_in(page, f"idna-{secrets.token_hex(4)}@example.org")
    complaints = csp_complaints(page)

    response = await page.goto(consent_path(client_id, uri))

    assert response is not None and response.status == 200
    csp = await response.header_value("content-security-policy")
    assert csp is not None
    assert_well_formed_csp(csp)
    assert csp.endswith("form-action 'self' https://xn--bcher-kva.example")
    await expect(page.get_by_role("button", name="Allow")).to_be_visible()
    await expect(page.locator("main")).to_contain_text("xn--bcher-kva.example")
    assert complaints == []


@pytest.mark.parametrize(
    "stored", ["https://☃.example/cb", "https://a.example;sandbox/cb", "https://é.example/cb"]
)
async def test_a_bad_stored_redirect_uri_gets_a_clean_refusal_from_the_real_server(
    page: Page, coop_server: CoopServer, stored: str
) -> None:
    client_id = register(coop_server, "https://edge.example/cb")
    await store_redirect_uri(coop_server, client_id, stored)
    await sign_up_and_log_in(page, f"stored-{secrets.token_hex(4)}@example.org")

    response = await page.goto(consent_path(client_id, stored))

    assert response is not None and response.status == 400
    assert await response.header_value("location") is None
    await expect(page.locator("main")).to_contain_text("must register it again")


def test_the_cli_of_the_real_deployment_refuses_a_unicode_host(coop_server: CoopServer) -> None:
    result = coop_server.coop(
        "app", "create", "--name", "A", "--redirect-uri", "https://☃.example/cb", check=False
    )
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
