"""Logging in (or signing up) from an app's authorization request says which app is asking,
and the request survives sign-up."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest

from coop.apps import service as apps
from coop.vault import Vault
from tests.web.journeys import PASSWORD

pytestmark = pytest.mark.usefixtures("db")


async def authorize_path(vault: Vault, name: str = "Budget <b>Buddy</b>") -> str:
    registered = await apps.create_app(
        vault=vault, name=name, redirect_uris=["https://buddy.example/cb"]
    )
    client_id = registered.app.client_id
    return f"/oauth/authorize?response_type=code&client_id={client_id}&scope=profile"


async def test_login_from_an_app_request_names_the_app(
    client: httpx.AsyncClient, vault: Vault
) -> None:
    page = await client.get("/login", params={"next": await authorize_path(vault)})
    assert page.status_code == 200
    assert "<strong>Budget &lt;b&gt;Buddy&lt;/b&gt;</strong> wants access" in page.text


@pytest.mark.parametrize(
    "next_path",
    ["/", "/account", "/oauth/authorize?client_id=nobody", "/oauth/authorize", "//evil.example"],
)
async def test_login_without_a_known_app_request_names_no_app(
    client: httpx.AsyncClient, next_path: str
) -> None:
    page = await client.get("/login", params={"next": next_path})
    assert page.status_code == 200
    assert "wants access" not in page.text


async def test_a_failed_login_still_names_the_app(client: httpx.AsyncClient, vault: Vault) -> None:
    next_path = await authorize_path(vault)
    page = await client.get("/login", params={"next": next_path})
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    failed = await client.post(
        "/login",
        data={
            "csrf_token": token,
            "email": "x@example.org",
            "password": "wrong",
            "next": next_path,
        },
        headers={"origin": "http://127.0.0.1:8000"},
    )
    assert failed.status_code in (400, 401)
    assert "Budget &lt;b&gt;Buddy&lt;/b&gt;</strong> wants access" in failed.text


async def test_sign_up_from_an_app_request_returns_to_it_after_login(
    client: httpx.AsyncClient, vault: Vault
) -> None:
    next_path = await authorize_path(vault)
    login = await client.get("/login", params={"next": next_path})
    assert f'href="/signup?next={quote(next_path, safe="/")}"' in login.text
    signup = await client.get("/signup", params={"next": next_path})
    assert "wants access" in signup.text
    token = signup.text.split('name="csrf_token" value="')[1].split('"')[0]
    done = await client.post(
        "/signup",
        data={"csrf_token": token, "email": "new@example.org", "password": PASSWORD,
              "next": next_path},
        headers={"origin": "http://127.0.0.1:8000"},
    )  # fmt: skip
    assert done.status_code == 303
    assert done.headers["location"] == "/login?next=" + quote(next_path, safe="")


async def test_sign_up_drops_a_hostile_next(client: httpx.AsyncClient) -> None:
    signup = await client.get("/signup")
    token = signup.text.split('name="csrf_token" value="')[1].split('"')[0]
    done = await client.post(
        "/signup",
        data={"csrf_token": token, "email": "new@example.org", "password": PASSWORD,
              "next": "https://evil.example/"},
        headers={"origin": "http://127.0.0.1:8000"},
    )  # fmt: skip
    assert done.headers["location"] == "/login"
