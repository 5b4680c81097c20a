"""CSRF (WS-05): every state-changing member form refuses forged posts and changes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from coop.members.models import LoginThrottle, Member, WebSession
from tests.web.journeys import (
    PASSWORD,
    Credentials,
    log_in_new_member,
    new_credentials,
    page_token,
    sign_up,
)


async def snapshot() -> tuple[list[Any], ...]:
    """Every row of the member tables, to prove a refused request changed nothing."""
    members = (
        await Member.all()
        .order_by("id")
        .values_list("id", "email_index", "handle_sealed", "password_hash", "password_changed_at")
    )
    sessions = (
        await WebSession.all()
        .order_by("id")
        .values_list("id", "token_hash", "last_seen_at", "reauthenticated_at")
    )
    throttles = await LoginThrottle.all().order_by("key").values_list("key", "failures")
    return list(members), list(sessions), list(throttles)


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000"
    )


async def _other_session_id(app: Any, creds: Credentials) -> str:
    async with _client(app) as other:
        token = await page_token(other, "/login")
        await other.post(
            "/login", data={"csrf_token": token, "email": creds.email, "password": PASSWORD}
        )
    (row,) = await WebSession.filter().order_by("-created_at").limit(1)
    return str(row.id)


async def forms(app: Any, client: httpx.AsyncClient) -> list[tuple[str, dict[str, str]]]:
    """(path, fields) of every state-changing form of the member pages, logged in."""
    creds = await log_in_new_member(client)
    other = await _other_session_id(app, creds)
    return [
        ("/logout", {}),
        ("/account", {"handle": "renamed"}),
        ("/account/password", {"current_password": PASSWORD, "new_password": "x" * 20}),
        (f"/account/sessions/{other}/end", {}),
        ("/account/sessions/end-others", {}),
        ("/reauth", {"password": PASSWORD, "next": "/"}),
    ]


ATTACKS = {
    "no token": ({}, None),
    "cross-site fetch": ({"sec-fetch-site": "cross-site"}, "valid"),
    "same-site fetch": ({"sec-fetch-site": "same-site"}, "valid"),
    "foreign origin": ({"origin": "https://evil.example"}, "valid"),
    "null origin": ({"origin": "null"}, "valid"),
    "wrong token": ({}, "0" * 64),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_ws05_forged_member_form_posts_get_403_and_change_nothing(
    app: Any, client: httpx.AsyncClient, attack: str
) -> None:
    headers, token_kind = ATTACKS[attack]
    for path, fields in await forms(app, client):
        valid = await page_token(client, "/account")
        data = dict(fields)
        if token_kind == "valid":
            data["csrf_token"] = valid
        elif token_kind is not None:
            data["csrf_token"] = token_kind
        before = await snapshot()
        response = await client.post(path, data=data, headers=headers)
        assert response.status_code == 403, (attack, path, response.status_code)
        assert "csrf_failed" in response.text or "cross_site_request" in response.text
        assert await snapshot() == before, (attack, path)


async def test_ws05_token_of_another_session_is_refused(
    app: Any, client: httpx.AsyncClient
) -> None:
    async with _client(app) as other:
        await log_in_new_member(other)
        foreign = await page_token(other, "/account")
    for path, fields in await forms(app, client):
        before = await snapshot()
        response = await client.post(path, data={**fields, "csrf_token": foreign})
        assert response.status_code == 403, path
        assert "csrf_failed" in response.text
        assert await snapshot() == before, path


@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_ws05_login_and_sign_up_refuse_forged_posts(
    client: httpx.AsyncClient, attack: str
) -> None:
    creds = new_credentials()
    await sign_up(client, creds)
    headers, token_kind = ATTACKS[attack]
    for path, fields in [
        ("/login", {"email": creds.email, "password": PASSWORD}),
        ("/signup", {"email": "forged@example.org", "password": PASSWORD}),
    ]:
        data = dict(fields)
        if token_kind == "valid":
            data["csrf_token"] = await page_token(client, "/login")
        elif token_kind is not None:
            data["csrf_token"] = token_kind
        before = await snapshot()
        response = await client.post(path, data=data, headers=headers)
        assert response.status_code == 403, (attack, path)
        assert await snapshot() == before
        assert "coop_session" not in client.cookies


async def test_ws05_login_token_of_another_browser_is_refused(
    app: Any, client: httpx.AsyncClient
) -> None:
    """Login CSRF: a pre-session token only works with the pre-session cookie it belongs to."""
    creds = new_credentials()
    await sign_up(client, creds)
    async with _client(app) as attacker:
        foreign = await page_token(attacker, "/login")
    response = await client.post(
        "/login", data={"csrf_token": foreign, "email": creds.email, "password": PASSWORD}
    )
    assert response.status_code == 403
    assert "coop_session" not in client.cookies


async def test_ws05_post_without_any_cookie_is_refused(app: Any) -> None:
    async with _client(app) as bare:
        response = await bare.post(
            "/login", data={"csrf_token": "x", "email": "a@example.org", "password": PASSWORD}
        )
    assert response.status_code == 403


@pytest.mark.parametrize(
    "path", ["/logout", "/account/sessions/{id}/end", "/account/sessions/end-others"]
)
async def test_ws05_get_on_post_only_routes_is_405_without_side_effects(
    client: httpx.AsyncClient, path: str
) -> None:
    await log_in_new_member(client)
    (row,) = await WebSession.all()
    before = await snapshot()
    response = await client.get(path.format(id=row.id))
    assert response.status_code == 405
    assert "method_not_allowed" in response.text
    assert await snapshot() == before
    assert (await client.get("/account")).status_code == 200


async def test_valid_same_origin_post_with_origin_header_is_accepted(
    client: httpx.AsyncClient,
) -> None:
    await log_in_new_member(client)
    token = await page_token(client, "/account")
    response = await client.post(
        "/account",
        data={"csrf_token": token, "handle": "gardener"},
        headers={"origin": "http://127.0.0.1:8000", "sec-fetch-site": "same-origin"},
    )
    assert response.status_code == 303


async def test_referrer_policy_lets_browsers_send_a_real_origin_on_own_forms(
    client: httpx.AsyncClient,
) -> None:
    """`no-referrer` would make browsers send `Origin: null` on every form post (Fetch spec,
    "serialize a request origin"), and the Origin check would refuse coop's own forms."""
    response = await client.get("/login")
    assert response.headers["referrer-policy"] == "same-origin"
