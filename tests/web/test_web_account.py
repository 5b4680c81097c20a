"""The account page: profile, handle, password change and active sessions."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import httpx

from coop.config import Settings
from coop.members.models import WebSession
from tests.web.journeys import (
    PASSWORD,
    SESSION_COOKIE,
    log_in,
    log_in_new_member,
    post_form,
    session_cookie,
)

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1"
)


def _client(app: Any, user_agent: str, address: str = "127.0.0.1") -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(address, 40000)),
        base_url="http://127.0.0.1:8000",
        headers={"user-agent": user_agent},
    )


async def test_account_page_shows_email_and_a_default_handle(client: httpx.AsyncClient) -> None:
    creds = await log_in_new_member(client)
    html = (await client.get("/account")).text
    assert f"<dd>{creds.email}</dd>" in html
    assert re.search(r'<label for="handle">Handle</label>', html)
    assert re.search(r'name="handle"[^>]*value="member-[0-9a-f]{4}"', html)


async def test_member_changes_their_handle(client: httpx.AsyncClient) -> None:
    await log_in_new_member(client)
    response = await post_form(client, "/account", {"handle": "Ada <b>L</b>"})
    assert response.status_code == 303
    html = (await client.get("/account")).text
    assert "Your handle was saved." in html
    assert 'value="Ada &lt;b&gt;L&lt;/b&gt;"' in html  # stored as typed, shown escaped


async def test_invalid_handle_is_refused_with_a_message(client: httpx.AsyncClient) -> None:
    await log_in_new_member(client)
    response = await post_form(client, "/account", {"handle": "x"})
    assert response.status_code == 400
    assert "Choose a handle of 2 to 40 characters." in response.text


async def test_sessions_list_marks_this_device_and_offers_to_end_the_others(app: Any) -> None:
    async with _client(app, FIREFOX) as laptop, _client(app, IPHONE) as phone:
        creds = await log_in_new_member(laptop)
        await log_in(phone, creds)
        html = (await laptop.get("/account")).text
    rows = re.findall(r"<tr>\s*<td id=\"session-[^\"]+\">(.*?)</tr>", html, re.S)
    assert len(rows) == 2
    this, other = rows
    assert this.startswith("Firefox on Linux") and "This device" in this
    assert "End session" not in this
    assert other.startswith("Safari on iPhone") and "This device" not in other
    assert ">End session</button>" in other


async def test_member_ends_another_session_and_its_cookie_stops_working(app: Any) -> None:
    async with _client(app, FIREFOX) as laptop, _client(app, IPHONE) as phone:
        creds = await log_in_new_member(laptop)
        await log_in(phone, creds)
        phone_session = await WebSession.get(
            token_hash=app.state.runtime.vault.token_hash(session_cookie(phone))
        )
        response = await post_form(laptop, f"/account/sessions/{phone_session.id}/end")
        assert response.status_code == 303
        assert response.headers["location"] == "/account"
        assert "The session was ended." in (await laptop.get("/account")).text
        assert (await phone.get("/account")).status_code == 303
        assert (await laptop.get("/account")).status_code == 200


async def test_member_cannot_end_someone_elses_session(app: Any) -> None:
    async with _client(app, FIREFOX) as alice, _client(app, IPHONE) as bob:
        await log_in_new_member(alice)
        await log_in_new_member(bob)
        bob_session = await WebSession.get(
            token_hash=app.state.runtime.vault.token_hash(session_cookie(bob))
        )
        response = await post_form(alice, f"/account/sessions/{bob_session.id}/end")
        assert response.status_code == 404
        assert "session_not_found" in response.text
        assert (await bob.get("/account")).status_code == 200


async def test_ending_this_devices_own_session_logs_out(client: httpx.AsyncClient) -> None:
    await log_in_new_member(client)
    (row,) = await WebSession.all()
    response = await post_form(client, f"/account/sessions/{row.id}/end")
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert await WebSession.all().count() == 0


async def test_password_change_ends_other_sessions_and_keeps_this_one(app: Any) -> None:
    async with (
        _client(app, FIREFOX) as laptop,
        _client(app, IPHONE) as phone,
        _client(app, "curl/8.0") as script,
    ):
        creds = await log_in_new_member(laptop)
        await log_in(phone, creds)
        await log_in(script, creds)
        response = await post_form(
            laptop,
            "/account/password",
            {"current_password": PASSWORD, "new_password": "a much better passphrase"},
            page="/account/password",
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/account"
        page = await laptop.get("/account")
        assert page.status_code == 200
        assert "Your password was changed. 2 other sessions ended." in page.text
        assert (await phone.get("/account")).status_code == 303
        assert (await script.get("/account")).status_code == 303
        assert await WebSession.all().count() == 1

        await post_form(laptop, "/logout")
        old = await log_in(laptop, creds)
        assert old.status_code == 400
        new = await log_in(laptop, type(creds)(creds.email, "a much better passphrase"))
        assert new.status_code == 303


async def test_password_change_needs_the_current_password(client: httpx.AsyncClient) -> None:
    await log_in_new_member(client)
    response = await post_form(
        client,
        "/account/password",
        {"current_password": "not my password", "new_password": "a much better passphrase"},
        page="/account/password",
    )
    assert response.status_code == 400
    assert "The password is incorrect." in response.text
    assert "invalid_password" in response.text


async def test_wrong_current_passwords_end_the_session_but_never_lock_the_member_out(
    settings: Settings, db: str
) -> None:
    """Someone holding a stolen session cookie gets COOP_LOGIN_ATTEMPTS guesses at the
    password in that session, then the session ends; the member's own login still works
    (the misses never counted against the email's login budget)."""
    from coop.app import build_app

    limited = dataclasses.replace(settings, login_attempts_per_window=3)
    app = build_app(limited, manage_db=False)
    async with _client(app, FIREFOX) as member, _client(app, IPHONE, "198.51.100.7") as thief:
        creds = await log_in_new_member(member)
        thief.cookies.set(SESSION_COOKIE, session_cookie(member) or "")  # the stolen cookie
        guess = {"current_password": "a guessed password", "new_password": "a new passphrase!"}
        for _ in range(limited.login_attempts_per_window - 1):
            response = await post_form(thief, "/account/password", guess, page="/account/password")
            assert response.status_code == 400
            assert "invalid_password" in response.text
        response = await post_form(thief, "/account/password", guess, page="/account/password")
        assert response.status_code == 303 and response.headers["location"] == "/login"
        login_page = await thief.get("/login")
        assert "Too many wrong passwords: you were logged out." in login_page.text
        assert (await thief.get("/account")).status_code == 303  # the session is gone

        # The member logs in at once (no 429: the misses never touched the email's login
        # budget) and changes the password with the right one.
        assert (await log_in(member, creds)).status_code == 303
        right = {"current_password": creds.password, "new_password": "a much better passphrase"}
        response = await post_form(member, "/account/password", right, page="/account/password")
        assert response.status_code == 303
        assert "Your password was changed." in (await member.get("/account")).text


async def test_password_change_applies_the_policy(client: httpx.AsyncClient) -> None:
    await log_in_new_member(client)
    response = await post_form(
        client,
        "/account/password",
        {"current_password": PASSWORD, "new_password": "short"},
        page="/account/password",
    )
    assert response.status_code == 400
    assert "Choose a password of at least 12 characters." in response.text


async def test_password_page_has_labelled_fields(client: httpx.AsyncClient) -> None:
    await log_in_new_member(client)
    html = (await client.get("/account/password")).text
    assert '<label for="current_password">Current password</label>' in html
    assert '<label for="new_password">New password</label>' in html


async def test_account_pages_require_login(client: httpx.AsyncClient) -> None:
    for path in ("/account", "/account/password"):
        response = await client.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")


async def test_authenticated_pages_are_not_cached(client: httpx.AsyncClient) -> None:
    await log_in_new_member(client)
    response = await client.get("/account")
    assert response.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


async def test_log_out_other_sessions_keeps_only_this_one(app: Any) -> None:
    async with (
        _client(app, FIREFOX) as laptop,
        _client(app, IPHONE) as phone,
        _client(app, "curl/8.0") as script,
    ):
        creds = await log_in_new_member(laptop)
        await log_in(phone, creds)
        await log_in(script, creds)
        assert ">Log out other sessions</button>" in (await laptop.get("/account")).text
        response = await post_form(laptop, "/account/sessions/end-others")
        assert response.status_code == 303
        page = await laptop.get("/account")
        assert "2 other sessions ended." in page.text
        assert "Log out other sessions" not in page.text
        assert (await phone.get("/account")).status_code == 303
        assert (await script.get("/account")).status_code == 303
        assert (await laptop.get("/account")).status_code == 200
