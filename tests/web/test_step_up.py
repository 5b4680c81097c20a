"""Step-up (WS-08) guards every route that yields export or delete power, mints a lasting
credential or destroys what others rely on; the list in docs/security.md is the contract."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from graphql import build_schema
from starlette.routing import Route
from tortoise import Tortoise

from coop.app import routes
from coop.apps import service as apps
from coop.apps.terms import validate_terms
from coop.http.stepup import is_guarded
from coop.members.models import Member
from coop.types import clock
from coop.vault import Vault
from tests.consent.conftest import issue
from tests.oauth import support
from tests.web.journeys import PASSWORD, csrf_token_in, log_in_new_member, page_token

ROOT = Path(__file__).resolve().parents[2]
SECURITY_MD = ROOT / "docs" / "security.md"
STALE_SECONDS = 11 * 60
READ_ONLY = {"GET", "HEAD"}


def _section(heading: str) -> str:
    text = SECURITY_MD.read_text()
    start = text.index(heading)
    end = text.find("\n#", start + len(heading))
    return text[start : end if end != -1 else None]


def _table_rows(text: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith("| `")
    ]


def documented_routes() -> dict[str, str]:
    """'METHOD /path' (or '/path' for any method) -> its step-up cell."""
    rows = _table_rows(_section("### Step-up").split("**Personal tokens.**")[0])
    return {name: row[1] for row in rows for name in re.findall(r"`([^`]+)`", row[0])}


def state_changing_routes() -> dict[str, object]:
    found: dict[str, object] = {}
    for route in routes():
        if not isinstance(route, Route):
            continue  # /static: files only
        if route.methods is None:
            found[route.path] = route.endpoint
        for method in (route.methods or set()) - READ_ONLY:
            found[f"{method} {route.path}"] = route.endpoint
    return found


def test_every_state_changing_route_is_classified_in_security_md() -> None:
    documented, actual = documented_routes(), state_changing_routes()
    assert set(actual) - set(documented) == set(), "classify these in docs/security.md"
    assert set(documented) - set(actual) == set(), "docs/security.md lists routes that are gone"


def test_the_recent_password_rows_are_exactly_the_decorated_endpoints() -> None:
    documented, actual = documented_routes(), state_changing_routes()
    said = {name for name, cell in documented.items() if cell.startswith("recent password")}
    wrapped = {name for name, endpoint in actual.items() if is_guarded(endpoint)}
    assert said == wrapped


def test_personal_tokens_reach_exactly_the_documented_mutations() -> None:
    rows = _table_rows(_section("### Step-up").split("**Personal tokens.**")[1])
    documented = {row[0].strip("`") for row in rows}
    sdl = (ROOT / "schema" / "coop.graphql").read_text()
    mutation = build_schema(sdl).mutation_type
    assert mutation is not None
    assert set(mutation.fields) == documented


# --- every guarded route, from a session whose password entry is 11 minutes old -----------

Snapshot = dict[str, list[str]]


async def database_snapshot() -> Snapshot:
    """Every row of every table (last_seen_at aside: reading a page moves it)."""
    snapshot: Snapshot = {}
    for model in Tortoise.apps["models"].values():  # type: ignore[index]
        rows = await model.all().values()
        snapshot[model._meta.db_table] = sorted(
            repr(sorted((k, v) for k, v in row.items() if k != "last_seen_at")) for row in rows
        )
    return snapshot


@dataclass(frozen=True)
class Submission:
    path: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Case:
    route: str
    prepare: Callable[[httpx.AsyncClient, Vault, Member], Awaitable[Submission]]
    # an export changes nothing in the database: the ZIP itself is the effect
    took_effect: Callable[[httpx.AsyncClient, httpx.Response], Awaitable[bool]] | None = None


async def _form(client: httpx.AsyncClient, path: str, page: str, **data: Any) -> Submission:
    return Submission(path, {"csrf_token": await page_token(client, page), **data})


async def _export(client: httpx.AsyncClient, vault: Vault, member: Member) -> Submission:
    return await _form(client, "/account/export", "/account/export")


async def _zip(client: httpx.AsyncClient, response: httpx.Response) -> bool:
    return response.status_code == 200 and response.headers["content-type"] == "application/zip"


async def _delete(client: httpx.AsyncClient, vault: Vault, member: Member) -> Submission:
    return await _form(client, "/account/delete", "/account/delete")


async def _token(client: httpx.AsyncClient, vault: Vault, member: Member) -> Submission:
    return await _form(
        client,
        "/developer/tokens",
        "/developer",
        token_name="stolen",
        token_scope="member:manage",
        token_lifetime="forever",
    )


async def _register(client: httpx.AsyncClient, vault: Vault, member: Member) -> Submission:
    return await _form(
        client,
        "/developer/apps",
        "/developer",
        name="Thief",
        redirect_uris="https://thief.example/cb",
        client_type="confidential",
    )


async def _delete_app(client: httpx.AsyncClient, vault: Vault, member: Member) -> Submission:
    reg = await support.register(vault, owner_id=member.id)
    return await _form(client, f"/developer/apps/{reg.app.id}/delete", "/developer")


async def _allow(client: httpx.AsyncClient, vault: Vault, member: Member) -> Submission:
    reg = await support.register(vault, name="Reader")
    params = support.authorize_params(reg, support.pkce()[1], scope="profile")
    page = await client.get("/oauth/authorize", params=params)
    assert page.status_code == 200, page.text
    form = {**params, "decision": "allow", "grant_scope": ["profile"], "lifetime": "forever"}
    form["terms_version"] = support.terms_version_from(page.text)
    return Submission("/oauth/authorize", {"csrf_token": csrf_token_in(page.text), **form})


async def _app_terms(client: httpx.AsyncClient, vault: Vault, member: Member) -> Submission:
    reg = await support.register(vault, owner_id=member.id)
    page = f"/developer/apps/{reg.app.id}/terms"
    return await _form(client, page, "/developer", purpose="To sell it.")


async def _agree(client: httpx.AsyncClient, vault: Vault, member: Member) -> Submission:
    reg = await support.register(vault, terms=validate_terms(purpose="To rank."))
    issued = await issue(member.id, reg)
    await apps.change_terms(terms=validate_terms(purpose="To sell."), app_id=reg.app.id)
    page = f"/apps/grants/{issued.grant.id}/terms"
    return await _form(client, f"/apps/grants/{issued.grant.id}/agree", page, terms_version="2")


GUARDED = [
    Case("POST /account/export", _export, _zip),
    Case("POST /account/delete", _delete),
    Case("POST /developer/tokens", _token),
    Case("POST /developer/apps", _register),
    Case("POST /developer/apps/{app_id}/delete", _delete_app),
    Case("POST /oauth/authorize", _allow),
    Case("POST /apps/grants/{grant_id}/agree", _agree),
    Case("POST /developer/apps/{app_id}/terms", _app_terms),
]


def test_every_recent_password_route_has_a_stale_session_case() -> None:
    said = {n for n, cell in documented_routes().items() if cell.startswith("recent password")}
    assert {case.route for case in GUARDED} == said


async def _member(vault: Vault, email: str) -> Member:
    from coop.members import service as members

    return await Member.get(email_index=members.email_index(vault, email))


async def _post(client: httpx.AsyncClient, sub: Submission) -> httpx.Response:
    return await client.post(sub.path, data=sub.data)


async def _reauthenticate(client: httpx.AsyncClient, location: str) -> str:
    next_path = parse_qs(urlsplit(location).query)["next"][0]
    token = await page_token(client, location)
    answer = await client.post(
        "/reauth", data={"csrf_token": token, "password": PASSWORD, "next": next_path}
    )
    assert answer.status_code == 303
    back: str = answer.headers["location"]
    return back


@pytest.mark.parametrize("case", GUARDED, ids=lambda c: c.route)
async def test_a_stale_session_changes_nothing_until_the_password_is_entered_again(
    client: httpx.AsyncClient, vault: Vault, case: Case
) -> None:
    creds = await log_in_new_member(client)
    member = await _member(vault, creds.email)
    clock.advance(STALE_SECONDS)
    submission = await case.prepare(client, vault, member)
    before = await database_snapshot()

    refused = await _post(client, submission)

    assert refused.status_code == 303, refused.text
    location = refused.headers["location"]
    assert location.startswith("/reauth?next=")
    assert await database_snapshot() == before
    assert "application/zip" not in refused.headers.get("content-type", "")

    # The password brings the member back to the form, and the same submission then works.
    back = await _reauthenticate(client, location)
    assert (await client.get(back)).status_code == 200
    done = await _post(client, submission)
    assert done.status_code in (200, 303), done.text
    if case.took_effect is not None:
        assert await case.took_effect(client, done)
    else:
        assert await database_snapshot() != before


async def test_a_stale_session_can_still_deny_an_app_without_the_password(
    client: httpx.AsyncClient, vault: Vault
) -> None:
    await log_in_new_member(client)
    clock.advance(STALE_SECONDS)
    reg = await support.register(vault)
    params = support.authorize_params(reg, support.pkce()[1])

    response = await support.consent(client, params, decision="deny")

    assert response.status_code == 303
    assert support.query_of(response.headers["location"])["error"] == "access_denied"


async def test_a_stale_session_cannot_change_the_password_without_the_current_one(
    client: httpx.AsyncClient, vault: Vault
) -> None:
    creds = await log_in_new_member(client)
    member = await _member(vault, creds.email)
    clock.advance(STALE_SECONDS)
    token = await page_token(client, "/account/password")

    response = await client.post(
        "/account/password",
        data={"csrf_token": token, "current_password": "", "new_password": "x" * 20},
    )

    assert response.status_code == 400
    assert (await Member.get(id=member.id)).password_hash == member.password_hash
