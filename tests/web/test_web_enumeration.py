"""No account enumeration through sign-up or login, and login rate limiting."""

from __future__ import annotations

import re
from typing import Any

import httpx

from coop.config import Settings
from coop.members.models import LoginThrottle, Member
from coop.members.service import email_index
from coop.members.throttle import throttle_keys
from coop.types import clock
from coop.vault import Vault
from tests.web.journeys import PASSWORD, log_in, new_credentials, post_form, sign_up

SIGNED_UP = "If this email was new, your account is ready. Log in to continue."


def _comparable(response: httpx.Response) -> tuple[Any, ...]:
    cookies = sorted(c.split("=", 1)[0] for c in response.headers.get_list("set-cookie"))
    volatile = {"x-request-id", "set-cookie", "content-length", "date"}
    headers = sorted((k, v) for k, v in response.headers.items() if k not in volatile)
    return response.status_code, headers, cookies, response.text


async def test_sign_up_with_an_existing_email_looks_exactly_like_a_new_account(
    client: httpx.AsyncClient,
) -> None:
    taken = new_credentials()
    await sign_up(client, taken)
    await client.get("/login")  # consume the flash
    existing = await post_form(
        client,
        "/signup",
        {"email": taken.email, "password": "another long password"},
        page="/signup",
    )
    existing_page = await client.get("/login")
    fresh = await sign_up(client, new_credentials())
    fresh_page = await client.get("/login")

    assert _comparable(existing) == _comparable(fresh)
    assert existing.headers["location"] == fresh.headers["location"] == "/login"
    assert SIGNED_UP in existing_page.text and SIGNED_UP in fresh_page.text
    strip = re.compile(r'name="csrf_token" value="[^"]+"')
    assert strip.sub("", existing_page.text) == strip.sub("", fresh_page.text)
    assert await Member.all().count() == 2


async def test_existing_account_keeps_its_password_after_a_repeated_sign_up(
    client: httpx.AsyncClient,
) -> None:
    creds = new_credentials()
    await sign_up(client, creds)
    await post_form(
        client, "/signup", {"email": creds.email, "password": "hijacker password"}, page="/signup"
    )
    response = await log_in(client, creds)
    assert response.status_code == 303


async def test_unknown_email_and_wrong_password_get_the_same_login_error(
    client: httpx.AsyncClient,
) -> None:
    creds = new_credentials()
    await sign_up(client, creds)
    unknown = await post_form(
        client, "/login", {"email": "nobody@example.org", "password": PASSWORD}, page="/login"
    )
    wrong = await post_form(
        client, "/login", {"email": creds.email, "password": "wrong password!"}, page="/login"
    )
    assert unknown.status_code == wrong.status_code == 400
    for response in (unknown, wrong):
        errors = re.findall(
            r'<div class="flash flash-error" role="alert" id="form-error">(.*?)</div>',
            response.text,
            re.S,
        )
        assert len(errors) == 1
        assert "Email or password is incorrect." in errors[0]
    mask = re.compile(r'name="csrf_token" value="[^"]+"|value="[^"]*@example.org"')
    assert mask.sub("", unknown.text) == mask.sub("", wrong.text)


async def test_too_many_failed_logins_get_429_with_retry_after(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    creds = new_credentials()
    await sign_up(client, creds)
    bad = {"email": creds.email, "password": "wrong password!"}
    for _ in range(settings.login_attempts_per_window):
        assert (await post_form(client, "/login", bad, page="/login")).status_code == 400
    response = await post_form(client, "/login", bad, page="/login")
    assert response.status_code == 429
    retry_after = int(response.headers["retry-after"])
    assert settings.login_window_seconds - 30 <= retry_after <= settings.login_window_seconds
    assert "Too many login attempts. Try again in 15 minutes." in response.text
    assert "rate_limited" in response.text

    # The correct password is refused too while the window lasts...
    response = await log_in(client, creds)
    assert response.status_code == 429
    # ...and accepted once it has passed.
    clock.advance(settings.login_window_seconds + 1)
    assert (await log_in(client, creds)).status_code == 303


async def test_rate_limit_per_client_address_covers_many_emails(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    for i in range(settings.login_attempts_per_window):
        data = {"email": f"guess{i}@example.org", "password": "wrong password!"}
        assert (await post_form(client, "/login", data, page="/login")).status_code == 400
    data = {"email": "another@example.org", "password": "wrong password!"}
    response = await post_form(client, "/login", data, page="/login")
    assert response.status_code == 429
    assert "retry-after" in response.headers


async def test_successful_login_resets_the_email_counter_but_not_the_address_counter(
    client: httpx.AsyncClient, settings: Settings, vault: Vault
) -> None:
    creds = new_credentials()
    await sign_up(client, creds)
    bad = {"email": creds.email, "password": "wrong password!"}
    for _ in range(3):
        await post_form(client, "/login", bad, page="/login")
    email_key, address_key = throttle_keys(
        vault=vault, email_index=email_index(vault, creds.email), client_address="127.0.0.1"
    )
    assert (await LoginThrottle.get(key=email_key)).failures == 3
    assert (await log_in(client, creds)).status_code == 303
    assert not await LoginThrottle.exists(key=email_key)
    assert (await LoginThrottle.get(key=address_key)).failures == 3


async def test_throttle_stores_no_email_or_address_in_clear(client: httpx.AsyncClient) -> None:
    data = {"email": "clear@example.org", "password": "wrong password!"}
    await post_form(client, "/login", data, page="/login")
    keys = await LoginThrottle.all().values_list("key", flat=True)
    assert len(keys) == 2
    assert not any("clear" in str(k) or "127.0.0.1" in str(k) for k in keys)
