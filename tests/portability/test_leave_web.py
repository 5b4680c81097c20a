"""The member UI for leaving: confirmation, step-up, receipt, export download (ER-01, ER-02,
ER-06, EX-03, WS-08)."""

from __future__ import annotations

import io
import json
import re
import zipfile
from typing import Any

import httpx

from coop.config import Settings
from coop.consent import personal
from coop.members import service as members
from coop.members.models import Member
from coop.portability import inventory, links
from coop.types import clock, utcnow
from coop.vault import Vault
from tests.web.journeys import csrf_token_in, log_in_new_member, post_form


async def member_id_of(vault: Vault, email: str) -> Any:
    member = await Member.get(email_index=members.email_index(vault, email))
    return member.id


async def test_delete_my_account_in_one_confirmation_then_receipt(
    client: httpx.AsyncClient, vault: Vault
) -> None:
    creds = await log_in_new_member(client)
    member_id = await member_id_of(vault, creds.email)
    page = await client.get("/account/delete")
    assert page.status_code == 200 and "Delete my account" in page.text
    token = csrf_token_in(page.text)

    response = await client.post("/account/delete", data={"csrf_token": token})

    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/account/deleted?receipt=")
    assert await inventory.count_rows(member_id) == {}
    receipt_page = await client.get(location)
    assert receipt_page.status_code == 200
    assert "Your account was deleted" in receipt_page.text
    assert creds.email not in receipt_page.text
    download = re.search(
        r'href="(/account/deleted/receipt\.json\?receipt=[^"]+)"', receipt_page.text
    )
    assert download
    first = await client.get(download.group(1).replace("&amp;", "&"))
    assert first.status_code == 200
    assert first.headers["cache-control"] == "no-store"
    assert "attachment" in first.headers["content-disposition"]
    body = first.json()
    assert body["type"] == "coop.deletion-receipt" and body["deleted"]["account"] == 1
    assert (await client.get(download.group(1))).status_code == 410

    # the session is dead, and a double submit is a redirect to log in, never a 500
    assert (await client.get("/account")).status_code == 303
    again = await client.post("/account/delete", data={"csrf_token": token})
    assert again.status_code in (303, 403)
    assert again.status_code != 500


async def test_delete_without_recent_password_asks_for_it_and_deletes_nothing(
    client: httpx.AsyncClient, vault: Vault, settings: Settings
) -> None:
    creds = await log_in_new_member(client)
    member_id = await member_id_of(vault, creds.email)
    clock.advance(11 * 60)
    await client.get("/account")  # keep the session from idling out
    token = csrf_token_in((await client.get("/account/delete")).text)
    response = await client.post("/account/delete", data={"csrf_token": token})
    assert response.status_code == 303
    assert response.headers["location"].startswith("/reauth")
    assert await Member.exists(id=member_id, password_hash__not="!erased")


async def test_delete_without_csrf_token_is_refused(
    client: httpx.AsyncClient, vault: Vault
) -> None:
    creds = await log_in_new_member(client)
    response = await client.post("/account/delete", data={})
    assert response.status_code == 403
    assert await Member.exists(id=await member_id_of(vault, creds.email))


async def test_export_download_streams_a_zip_with_safe_headers(
    client: httpx.AsyncClient, vault: Vault
) -> None:
    creds = await log_in_new_member(client)
    page = await client.get("/account/export")
    assert page.status_code == 200 and "Export my data" in page.text
    response = await post_form(client, "/account/export", page="/account/export")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    today = utcnow().date().isoformat()
    assert response.headers["content-disposition"] == (
        f'attachment; filename="coop-export-{today}.zip"'
    )
    assert response.headers["cache-control"] == "no-store"
    with zipfile.ZipFile(io.BytesIO(response.content)) as zf:
        profile = json.loads(zf.read("profile.json"))
    assert profile["email"] == creds.email


async def test_export_link_needs_its_owner_is_single_use_and_expires(
    client: httpx.AsyncClient, app: Any, vault: Vault
) -> None:
    creds = await log_in_new_member(client)
    owner = await member_id_of(vault, creds.email)
    pat = await personal.create_personal_token(
        member_id=owner, name="cli", scopes=["profile"], lifetime="30d"
    )
    issued = await links.request_export(vault=vault, member_id=owner)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as anon:
        assert (await anon.get(issued.path)).status_code == 404
        other = await log_in_new_member(anon)
        assert other.email != creds.email
        assert (await anon.get(issued.path)).status_code == 404
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as api:
        bearer = {"Authorization": f"Bearer {pat.token}"}
        ok = await api.get(issued.path, headers=bearer)
        assert ok.status_code == 200 and ok.headers["cache-control"] == "no-store"
        assert ok.headers["content-disposition"].startswith('attachment; filename="coop-export-')
        assert (await api.get(issued.path, headers=bearer)).status_code == 410
        late = await links.request_export(vault=vault, member_id=owner)
        clock.advance(links.LINK_TTL.total_seconds() + 1)
        assert (await api.get(late.path, headers=bearer)).status_code == 410


async def test_after_deletion_every_credential_is_dead_over_http(
    client: httpx.AsyncClient, app: Any, vault: Vault, settings: Settings
) -> None:
    """ER-02: session -> log in; GraphQL -> 401 invalid_token; refresh -> invalid_grant;
    introspection -> inactive."""
    import base64

    from tests.portability.factories import Person, grant_app, make_app

    creds = await log_in_new_member(client)
    member_id = await member_id_of(vault, creds.email)
    app_id, secret = await make_app(vault, "Alpha")
    from coop.apps.models import App

    client_id = (await App.get(id=app_id)).client_id
    holder = Person(member_id, creds.email, "c", "")
    await grant_app(holder, app_id)
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    client_auth = {"Authorization": f"Basic {basic}"}
    access, refresh = holder.access_tokens[0], holder.refresh_tokens[0]
    query = {"query": "{ __typename }"}
    assert (
        await client.post("/graphql", json=query, headers={"Authorization": f"Bearer {access}"})
    ).status_code == 200

    assert (await post_form(client, "/account/delete", page="/account/delete")).status_code == 303

    assert (await client.get("/account")).status_code == 303
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as api:
        gql = await api.post("/graphql", json=query, headers={"Authorization": f"Bearer {access}"})
        assert gql.status_code == 401
        assert 'error="invalid_token"' in gql.headers["www-authenticate"]
        refreshed = await api.post(
            "/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": refresh},
            headers=client_auth,
        )
        assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"
        info = await api.post("/oauth/introspect", data={"token": access}, headers=client_auth)
        assert info.status_code == 200 and info.json() == {"active": False}


async def test_export_without_recent_password_asks_for_it(client: httpx.AsyncClient) -> None:
    await log_in_new_member(client)
    clock.advance(11 * 60)
    token = csrf_token_in((await client.get("/account/export")).text)
    response = await client.post("/account/export", data={"csrf_token": token})
    assert response.status_code == 303
    assert response.headers["location"].startswith("/reauth")


async def test_deletion_logs_carry_no_email_token_or_receipt(
    client: httpx.AsyncClient, vault: Vault, caplog: Any
) -> None:
    import logging

    from coop.logs import JsonFormatter

    caplog.set_level(logging.INFO)
    creds = await log_in_new_member(client)
    response = await post_form(client, "/account/delete", page="/account/delete")
    receipt_token = response.headers["location"].split("receipt=", 1)[1]
    await client.get(response.headers["location"])
    formatter = JsonFormatter()
    # The server's own loggers (the test's httpx client logs the URLs it requests).
    lines = [formatter.format(r) for r in caplog.records if r.name.startswith("coop")]
    assert any("member key destroyed" in line for line in lines)
    for line in lines:
        assert creds.email not in line and receipt_token not in line
