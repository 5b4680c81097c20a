"""Session security: the WS-01..WS-04, WS-06 and WS-08 rows of the security checklist."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from coop.config import Settings
from coop.http.auth import require_recent_auth
from coop.http.csrf import read_form
from coop.members.models import WebSession
from coop.types import clock
from coop.vault import Vault
from tests.web.journeys import (
    PASSWORD,
    SESSION_COOKIE,
    log_in,
    log_in_new_member,
    log_out,
    new_credentials,
    page_token,
    plant_session_cookie,
    post_form,
    session_cookie,
    sign_up,
)


def _client(app: Any, base_url: str = "http://127.0.0.1:8000") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)


@pytest.fixture
async def https_client(settings: Settings, db: str) -> AsyncIterator[httpx.AsyncClient]:
    """The production configuration: coop behind https."""
    from coop.app import build_app

    app = build_app(dataclasses.replace(settings, issuer="https://coop.example"), manage_db=False)
    async with _client(app, "https://coop.example") as client:
        yield client


# -- WS-01 ---------------------------------------------------------------------------------


async def test_ws01_session_cookie_has_host_prefix_and_strict_flags_under_https(
    https_client: httpx.AsyncClient,
) -> None:
    creds = new_credentials()
    await sign_up(https_client, creds)
    response = await log_in(https_client, creds)
    assert response.status_code == 303
    (cookie,) = [
        c for c in response.headers.get_list("set-cookie") if c.startswith("__Host-coop_session=")
    ]
    attributes = [part.strip().lower() for part in cookie.split(";")[1:]]
    assert "secure" in attributes
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert "path=/" in attributes
    assert not any(a.startswith("domain") for a in attributes)
    token = cookie.split(";")[0].split("=", 1)[1]
    assert len(token) >= 43  # 32 random bytes, base64url: 256 bits


async def test_ws01_plain_http_dev_server_uses_the_unprefixed_cookie_without_secure(
    client: httpx.AsyncClient,
) -> None:
    creds = new_credentials()
    await sign_up(client, creds)
    response = await log_in(client, creds)
    (cookie,) = [c for c in response.headers.get_list("set-cookie") if c.startswith("coop_")]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    attributes = [part.strip().lower() for part in cookie.split(";")[1:]]
    assert "httponly" in attributes and "samesite=lax" in attributes and "path=/" in attributes
    assert "secure" not in attributes


async def test_session_token_is_stored_only_as_a_hash(
    client: httpx.AsyncClient, vault: Vault
) -> None:
    await log_in_new_member(client)
    token = session_cookie(client)
    assert token is not None
    (row,) = await WebSession.all()
    assert row.token_hash == vault.token_hash(token)
    assert token not in row.token_hash


# -- WS-02 ---------------------------------------------------------------------------------


async def victim_logs_in_over(
    app: Any, client: httpx.AsyncClient, victim: Any, token: str, planted: str
) -> None:
    """The victim logs in with `planted` in the browser's jar: the login issues a fresh
    cookie, and the planted one, replayed, opens nothing (WS-02)."""
    response = await client.post(
        "/login", data={"csrf_token": token, "email": victim.email, "password": PASSWORD}
    )
    assert response.status_code == 303
    fresh = session_cookie(client)
    assert fresh is not None and fresh != planted
    async with _client(app) as replay:
        plant_session_cookie(replay, planted)
        assert (await replay.get("/account")).status_code == 303


async def test_ws02_planted_unknown_cookie_is_replaced_at_login_and_never_valid(
    app: Any, client: httpx.AsyncClient
) -> None:
    planted = "attacker-known-value-" + "x" * 22
    victim = new_credentials()
    await sign_up(client, victim)
    token = await page_token(client, "/login")
    plant_session_cookie(client, planted)
    await victim_logs_in_over(app, client, victim, token, planted)


async def test_ws02_planted_attacker_session_is_ended_when_the_victim_logs_in(
    app: Any, client: httpx.AsyncClient
) -> None:
    async with _client(app) as attacker:
        await log_in_new_member(attacker)
        planted = session_cookie(attacker)
    assert planted is not None
    victim = new_credentials()
    await sign_up(client, victim)
    plant_session_cookie(client, planted)
    token = await page_token(client, "/account")  # the browser shows the planted session
    await victim_logs_in_over(app, client, victim, token, planted)
    assert await WebSession.all().count() == 1


async def test_ws02_unknown_planted_token_grants_nothing(client: httpx.AsyncClient) -> None:
    plant_session_cookie(client, "attacker-chosen-value")
    response = await client.get("/account")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Faccount"


# -- WS-03 ---------------------------------------------------------------------------------


async def test_ws03_cookie_replayed_after_logout_is_sent_to_log_in(
    app: Any, client: httpx.AsyncClient
) -> None:
    await log_in_new_member(client)
    captured = session_cookie(client)
    assert captured is not None
    await log_out(client)
    assert await WebSession.all().count() == 0
    async with _client(app) as replay:
        plant_session_cookie(replay, captured)
        response = await replay.get("/account")
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login")
        json_response = await replay.get("/account", headers={"accept": "application/json"})
        assert json_response.status_code == 401
        assert json_response.json()["error"] == "login_required"


async def test_ws03_stale_cookie_is_deleted_from_the_browser(
    app: Any, client: httpx.AsyncClient
) -> None:
    await log_in_new_member(client)
    captured = session_cookie(client)
    await log_out(client)
    async with _client(app) as replay:
        plant_session_cookie(replay, captured or "")
        response = await replay.get("/login")
        assert any(
            c.startswith(f'{SESSION_COOKIE}=""') or c.startswith(f"{SESSION_COOKIE}=;")
            for c in response.headers.get_list("set-cookie")
        )


async def test_ws03_cookie_replayed_after_password_change_is_sent_to_log_in(
    app: Any, client: httpx.AsyncClient
) -> None:
    creds = await log_in_new_member(client)
    async with _client(app) as other_device:
        await log_in(other_device, creds)
        captured = session_cookie(other_device)
    response = await post_form(
        client,
        "/account/password",
        {"current_password": PASSWORD, "new_password": "a brand new passphrase"},
        page="/account/password",
    )
    assert response.status_code == 303
    async with _client(app) as replay:
        plant_session_cookie(replay, captured or "")
        assert (await replay.get("/account")).status_code == 303
    assert (await client.get("/account")).status_code == 200  # this device stays logged in


# -- WS-04 ---------------------------------------------------------------------------------


async def test_ws04_idle_timeout_sends_the_member_to_log_in(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await log_in_new_member(client)
    clock.advance(settings.session_idle_seconds - 5)
    assert (await client.get("/account")).status_code == 200
    clock.advance(settings.session_idle_seconds + 1)
    response = await client.get("/account")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Faccount"
    assert await WebSession.all().count() == 0


async def test_ws04_activity_does_not_extend_the_absolute_lifetime(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await log_in_new_member(client)
    step = settings.session_idle_seconds // 2
    elapsed = 0
    while elapsed + step < settings.session_absolute_seconds:
        clock.advance(step)
        elapsed += step
        assert (await client.get("/account")).status_code == 200, elapsed
    clock.advance(settings.session_absolute_seconds - elapsed + 1)
    # Still within the idle timeout, but past the absolute lifetime.
    response = await client.get("/account")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")


async def test_ws04_cookie_max_age_is_the_absolute_lifetime_and_not_reissued(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    creds = new_credentials()
    await sign_up(client, creds)
    response = await log_in(client, creds)
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE)
    )
    assert f"max-age={settings.session_absolute_seconds}" in cookie.lower()
    clock.advance(120)
    page = await client.get("/account")
    assert not any(c.startswith(SESSION_COOKIE) for c in page.headers.get_list("set-cookie"))


async def test_last_seen_is_written_at_most_once_a_minute(client: httpx.AsyncClient) -> None:
    await log_in_new_member(client)
    (row,) = await WebSession.all()
    clock.advance(30)
    await client.get("/account")
    assert (await WebSession.get(id=row.id)).last_seen_at == row.last_seen_at
    clock.advance(31)
    await client.get("/account")
    assert (await WebSession.get(id=row.id)).last_seen_at > row.last_seen_at


# -- WS-06 ---------------------------------------------------------------------------------

HOSTILE_NEXT = [
    "https://evil.example",
    "//evil.example",
    "/\\evil.example",
    "%2F%2Fevil.example",
    "/%2Fevil.example",
    "/%5Cevil.example",
    "%252F%252Fevil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "/\t/evil.example",
    "http:evil.example",
    "",
]


@pytest.mark.parametrize("next_path", HOSTILE_NEXT)
async def test_ws06_login_never_redirects_off_site(
    client: httpx.AsyncClient, next_path: str
) -> None:
    creds = new_credentials()
    await sign_up(client, creds)
    response = await log_in(client, creds, next_path=next_path)
    assert response.status_code == 303
    assert response.headers["location"] == "/"


async def test_ws06_login_page_drops_a_hostile_next_from_its_form(
    client: httpx.AsyncClient,
) -> None:
    html = (await client.get("/login?next=" + quote("//evil.example"))).text
    assert 'name="next" value="/"' in html


async def test_ws06_same_site_next_is_honoured_after_login(client: httpx.AsyncClient) -> None:
    response = await client.get("/account")
    assert response.headers["location"] == "/login?next=%2Faccount"
    creds = new_credentials()
    await sign_up(client, creds)
    html = (await client.get("/login?next=%2Faccount%3Ftab%3Dsessions")).text
    assert 'name="next" value="/account?tab=sessions"' in html
    response = await log_in(client, creds, next_path="/account?tab=sessions")
    assert response.headers["location"] == "/account?tab=sessions"


# -- WS-08 ---------------------------------------------------------------------------------


@pytest.fixture
def destroyed(app: Any) -> list[str]:
    """A destructive test route guarded like account deletion: step-up, then CSRF."""
    calls: list[str] = []

    async def destroy(request: Request) -> Response:
        member = await require_recent_auth(request)
        if request.method == "POST":
            await read_form(request)
            calls.append(str(member.id))
            return PlainTextResponse("destroyed")
        return PlainTextResponse("confirm")

    app.router.routes.append(Route("/test-destroy", destroy, methods=["GET", "POST"]))
    return calls


async def test_ws08_stale_login_must_reenter_the_password_before_destroying(
    client: httpx.AsyncClient, destroyed: list[str]
) -> None:
    await log_in_new_member(client)
    clock.advance(11 * 60)
    response = await post_form(client, "/test-destroy", page="/account")
    assert response.status_code == 303
    assert response.headers["location"] == "/reauth?next=%2Ftest-destroy"
    assert destroyed == []

    reauth_page = await client.get(response.headers["location"])
    assert reauth_page.status_code == 200
    assert 'name="next" value="/test-destroy"' in reauth_page.text
    response = await post_form(
        client,
        "/reauth",
        {"password": PASSWORD, "next": "/test-destroy"},
        page="/reauth?next=%2Ftest-destroy",
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/test-destroy"
    response = await post_form(client, "/test-destroy", page="/account")
    assert response.status_code == 200
    assert len(destroyed) == 1


async def test_ws08_stolen_cookie_without_the_password_destroys_nothing(
    client: httpx.AsyncClient, destroyed: list[str]
) -> None:
    await log_in_new_member(client)
    clock.advance(11 * 60)
    response = await post_form(
        client,
        "/reauth",
        {"password": "a guessed password", "next": "/test-destroy"},
        page="/reauth",
    )
    assert response.status_code == 400
    assert "The password is incorrect." in response.text
    response = await post_form(client, "/test-destroy", page="/account")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/reauth")
    assert destroyed == []


async def test_ws08_fresh_login_counts_as_recent_authentication(
    client: httpx.AsyncClient, destroyed: list[str]
) -> None:
    await log_in_new_member(client)
    clock.advance(5 * 60)
    response = await post_form(client, "/test-destroy", page="/account")
    assert response.status_code == 200
    assert len(destroyed) == 1


async def test_ws08_logged_out_visitor_is_sent_to_log_in_first(
    client: httpx.AsyncClient, destroyed: list[str]
) -> None:
    response = await client.get("/test-destroy")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Ftest-destroy"


async def test_reauth_page_requires_a_session(client: httpx.AsyncClient) -> None:
    response = await client.get("/reauth?next=/account")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")


async def test_session_remains_after_logging_in_elsewhere(
    app: Any, client: httpx.AsyncClient
) -> None:
    creds = await log_in_new_member(client)
    async with _client(app) as second:
        await log_in(second, creds)
    assert (await client.get("/account")).status_code == 200
    assert await WebSession.all().count() == 2


async def test_ws08_changing_the_password_counts_as_recent_authentication(
    client: httpx.AsyncClient, destroyed: list[str]
) -> None:
    await log_in_new_member(client)
    clock.advance(20 * 60)
    response = await post_form(
        client,
        "/account/password",
        {"current_password": PASSWORD, "new_password": "a brand new passphrase"},
        page="/account/password",
    )
    assert response.status_code == 303
    response = await post_form(client, "/test-destroy", page="/account")
    assert response.status_code == 200
    assert len(destroyed) == 1
