"""Transport helpers: open-redirect filtering, signed flashes, device labels, Actor."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from coop.http.auth import Actor, safe_next_path
from coop.http.flash import Flash, decode_flash, encode_flash
from coop.members.devices import device_label
from coop.types import clock


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "account",
        "https://evil.example/",
        "HTTPS://evil.example",
        "//evil.example",
        "///evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "%2F%2Fevil.example",
        "%2f%2fevil.example",
        "/%2F/evil.example",
        "/%5Cevil.example",
        "%252F%252Fevil.example",
        "/%252F%252Fevil.example",
        "javascript:alert(1)",
        "/\r\nLocation: https://evil.example",
        "/%0d%0aSet-Cookie:x=y",
        "/" + "a" * 3000,
    ],
)
def test_unsafe_next_values_become_the_start_page(value: str | None) -> None:
    assert safe_next_path(value) == "/"


@pytest.mark.parametrize(
    "value", ["/", "/account", "/account?tab=sessions", "/oauth/authorize?client_id=a&state=x%20y"]
)
def test_same_origin_paths_are_kept(value: str) -> None:
    assert safe_next_path(value) == value


def test_actor_is_immutable_and_defaults_to_no_scopes() -> None:
    actor = Actor(member_id=uuid.uuid4(), session_id=None, kind="token")
    assert actor.scopes == frozenset()
    with pytest.raises(AttributeError):
        actor.kind = "session"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("user_agent", "label"),
    [
        (
            "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0",
            "Firefox on Linux",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/142.0.0.0 Safari/537.36 Edg/142.0.0.0",
            "Edge on Windows",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/18.1 Safari/605.1.15",
            "Safari on macOS",
        ),
        ("", "Unknown browser"),
        (None, "Unknown browser"),
    ],
)
def test_device_labels_are_short_and_readable(user_agent: str | None, label: str) -> None:
    assert device_label(user_agent) == label


async def test_flash_cookie_is_signed_and_expires(app: Any) -> None:
    runtime = app.state.runtime
    value = encode_flash(runtime, Flash("Saved.", "ok"))
    assert decode_flash(runtime, value) == Flash("Saved.", "ok")
    payload, _, signature = value.partition(".")
    forged = encode_flash(runtime, Flash("Send your password to evil.example", "ok"))
    assert decode_flash(runtime, f"{forged.partition('.')[0]}.{signature}") is None
    assert decode_flash(runtime, payload) is None
    clock.advance(61)
    assert decode_flash(runtime, value) is None


async def test_forged_flash_cookie_is_not_shown(client: httpx.AsyncClient, app: Any) -> None:
    genuine = encode_flash(app.state.runtime, Flash("Genuine", "ok"))
    forged = encode_flash(app.state.runtime, Flash("Forged", "ok")).partition(".")[0]
    client.cookies.set("coop_flash", f"{forged}.{genuine.partition('.')[2]}", domain="127.0.0.1")
    html = (await client.get("/login")).text
    assert "Forged" not in html and 'class="flash' not in html


async def test_login_page_sets_an_httponly_pre_session_cookie(client: httpx.AsyncClient) -> None:
    response = await client.get("/login")
    (cookie,) = [c for c in response.headers.get_list("set-cookie") if c.startswith("coop_csrf=")]
    attributes = [p.strip().lower() for p in cookie.split(";")[1:]]
    assert "httponly" in attributes and "samesite=lax" in attributes and "path=/" in attributes
    again = await client.get("/login")
    assert not any(c.startswith("coop_csrf=") for c in again.headers.get_list("set-cookie"))
