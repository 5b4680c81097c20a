"""Browser journeys for web tests: sign up, log in, read CSRF tokens (importable by any test).

from tests.web.journeys import log_in_new_member, post_form
member = await log_in_new_member(client)          # signed up and logged in
response = await post_form(client, "/connectors", {"url": ...}, page="/connectors/new")
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

import httpx

PASSWORD = "correct horse battery staple"
SESSION_COOKIE = "coop_session"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class Credentials:
    email: str
    password: str


def csrf_token_in(html: str) -> str:
    """The first CSRF token on a rendered page."""
    match = _TOKEN.search(html)
    assert match, "the page has no form with a csrf_token"
    return match.group(1)


async def page_token(client: httpx.AsyncClient, page: str) -> str:
    response = await client.get(page)
    assert response.status_code == 200, (page, response.status_code)
    return csrf_token_in(response.text)


async def post_form(
    client: httpx.AsyncClient,
    path: str,
    data: dict[str, str] | None = None,
    *,
    page: str = "/account",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST `data` to `path` with the CSRF token taken from `page` (as a browser would)."""
    token = await page_token(client, page)
    return await client.post(path, data={"csrf_token": token, **(data or {})}, headers=headers)


def new_credentials() -> Credentials:
    return Credentials(f"member-{secrets.token_hex(4)}@example.org", PASSWORD)


async def sign_up(client: httpx.AsyncClient, creds: Credentials) -> httpx.Response:
    return await post_form(
        client, "/signup", {"email": creds.email, "password": creds.password}, page="/signup"
    )


async def log_in(
    client: httpx.AsyncClient, creds: Credentials, *, next_path: str | None = None
) -> httpx.Response:
    data = {"email": creds.email, "password": creds.password}
    if next_path is not None:
        data["next"] = next_path
    return await post_form(client, "/login", data, page="/login")


async def log_in_new_member(client: httpx.AsyncClient) -> Credentials:
    """Sign up a fresh member and log this client in as them."""
    creds = new_credentials()
    assert (await sign_up(client, creds)).status_code == 303
    response = await log_in(client, creds)
    assert response.status_code == 303, response.text
    return creds


async def log_out(client: httpx.AsyncClient) -> httpx.Response:
    return await post_form(client, "/logout", page="/account")


def session_cookie(client: httpx.AsyncClient) -> str | None:
    return client.cookies.get(SESSION_COOKIE)


def plant_session_cookie(client: httpx.AsyncClient, value: str) -> None:
    """Put a session cookie into the client's jar as if the server had set it."""
    client.cookies.set(SESSION_COOKIE, value, domain=client.base_url.host)


async def finish_jobs(app: Any) -> None:
    """Wait for the background jobs the app queued (Enable, Recompute and Accept score in the
    background) to finish, as a member who waits for the page to say so would."""
    await app.state.runtime.jobs.queue.drain()
