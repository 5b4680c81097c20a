"""Member pages: /apps (revoke, pause, resume), /access-log, /developer (apps, tokens)."""

from __future__ import annotations

import re

import httpx
import pytest

from coop.apps import service as apps
from coop.apps.models import App
from coop.config import Settings
from coop.consent import service as consent
from coop.consent.models import PersonalToken
from coop.members.models import Member
from coop.vault import Vault
from tests.consent.conftest import Issued, issue
from tests.oauth.support import csrf_from, log_in, make_member, register

SAME_SITE = {"Sec-Fetch-Site": "same-origin"}


@pytest.fixture
async def member(db: str, vault: Vault) -> Member:
    return await make_member(vault)


@pytest.fixture
async def browser(
    client: httpx.AsyncClient, member: Member, vault: Vault, settings: Settings
) -> httpx.AsyncClient:
    await log_in(client, vault, settings, member)
    return client


async def post(browser: httpx.AsyncClient, path: str, page: str, **data: object) -> httpx.Response:
    html = (await browser.get(page)).text
    form = {"csrf_token": csrf_from(html), **data}
    return await browser.post(path, data=form, headers=SAME_SITE)


async def test_apps_page_lists_each_app_with_its_access(
    browser: httpx.AsyncClient, member: Member, vault: Vault
) -> None:
    item = await issue(member.id, await register(vault, name="<b>Ranker</b>"))
    page = await browser.get("/apps")
    assert page.status_code == 200
    assert "&lt;b&gt;Ranker&lt;/b&gt;" in page.text and "<b>Ranker</b>" not in page.text
    assert "your Reach score: the exact value and its explanation" in page.text
    assert ">Revoke</button>" in page.text
    assert ">Pause all sharing</button>" in page.text
    assert "Never" in page.text  # last access
    principal = await consent.resolve_bearer(item.access_token)
    assert principal is not None
    await consent.authorize_read(principal=principal, scope="profile", resource="profile")
    assert "Never" not in (await browser.get("/apps")).text


async def test_revoke_button_ends_the_grant_at_once(
    browser: httpx.AsyncClient, member: Member, vault: Vault
) -> None:
    item = await issue(member.id, await register(vault))
    response = await post(browser, f"/apps/grants/{item.grant.id}/revoke", "/apps")
    assert response.status_code == 303
    assert await consent.resolve_bearer(item.access_token) is None
    assert "No app can read your data." in (await browser.get("/apps")).text


async def test_the_member_lowers_a_score_on_the_apps_page_and_never_raises_it(
    browser: httpx.AsyncClient, member: Member, vault: Vault
) -> None:
    item = await issue(member.id, await register(vault), scopes=["profile", "score:reach"])
    page = (await browser.get("/apps")).text
    assert re.search(r"Share only a range such as [0-9]+\u2013[0-9]+</button>", page)
    assert "Stop sharing this score</button>" in page
    lower = f"/apps/grants/{item.grant.id}/lower"
    response = await post(browser, lower, "/apps", scope="score:reach", to="score:reach:band")
    assert response.status_code == 303
    principal = await consent.resolve_bearer(item.access_token)
    assert principal is not None and principal.scopes == {"profile", "score:reach:band"}
    page = (await browser.get("/apps")).text
    assert "your Reach score: a range such as" in page and "Share only" not in page
    raised = await post(browser, lower, "/apps", scope="score:reach:band", to="score:reach")
    assert raised.status_code == 400
    principal = await consent.resolve_bearer(item.access_token)
    assert principal is not None and principal.scopes == {"profile", "score:reach:band"}


async def test_revoke_without_csrf_token_is_refused(
    browser: httpx.AsyncClient, member: Member, vault: Vault
) -> None:
    item = await issue(member.id, await register(vault))
    response = await browser.post(f"/apps/grants/{item.grant.id}/revoke", headers=SAME_SITE)
    assert response.status_code == 403
    assert await consent.resolve_bearer(item.access_token) is not None


async def test_revoking_someone_elses_grant_is_not_found(
    browser: httpx.AsyncClient, vault: Vault
) -> None:
    other = await make_member(vault)
    item = await issue(other.id, await register(vault))
    response = await post(browser, f"/apps/grants/{item.grant.id}/revoke", "/apps")
    assert response.status_code == 404
    assert await consent.resolve_bearer(item.access_token) is not None


async def test_pause_and_resume_buttons(
    browser: httpx.AsyncClient, member: Member, vault: Vault
) -> None:
    item: Issued = await issue(member.id, await register(vault))
    assert (await post(browser, "/apps/pause", "/apps")).status_code == 303
    assert await consent.resolve_bearer(item.access_token) is None
    page = (await browser.get("/apps")).text
    assert ">Resume sharing</button>" in page and "Paused" in page
    assert (await post(browser, "/apps/resume", "/apps")).status_code == 303
    assert await consent.resolve_bearer(item.access_token) is not None


async def test_pause_and_resume_one_app(
    browser: httpx.AsyncClient, member: Member, vault: Vault
) -> None:
    one: Issued = await issue(member.id, await register(vault, name="Alpha"))
    two: Issued = await issue(member.id, await register(vault, name="Beta"))
    response = await post(browser, f"/apps/grants/{one.grant.id}/pause", "/apps")
    assert response.status_code == 303
    assert await consent.resolve_bearer(one.access_token) is None
    assert await consent.resolve_bearer(two.access_token) is not None
    page = (await browser.get("/apps")).text
    assert "Access paused." in page and "Paused by you" in page
    assert f'action="/apps/grants/{one.grant.id}/resume"' in page
    assert f'action="/apps/grants/{two.grant.id}/pause"' in page
    await post(browser, "/apps/pause", "/apps")
    await post(browser, f"/apps/grants/{one.grant.id}/resume", "/apps")
    page = (await browser.get("/apps")).text
    assert "when you resume sharing" in page
    await post(browser, "/apps/resume", "/apps")
    for item in (one, two):
        assert await consent.resolve_bearer(item.access_token) is not None
    other = await issue((await make_member(vault)).id, await register(vault))
    response = await post(browser, f"/apps/grants/{other.grant.id}/pause", "/apps")
    assert response.status_code == 404
    assert await consent.resolve_bearer(other.access_token) is not None


async def test_access_log_page_shows_reads_and_filters_by_app(
    browser: httpx.AsyncClient, member: Member, vault: Vault
) -> None:
    one = await issue(member.id, await register(vault, name="Alpha"))
    two = await issue(member.id, await register(vault, name="Beta"))
    for item in (one, two):
        principal = await consent.resolve_bearer(item.access_token)
        assert principal is not None
        await consent.authorize_read(principal=principal, scope="score:reach", resource="Reach")
    page = (await browser.get("/access-log")).text
    assert "Alpha" in page and "Beta" in page
    filtered = (await browser.get(f"/access-log?app={one.reg.app.id}")).text
    rows = re.findall(r"<tr>\s*<td>.*?</tr>", filtered, re.S)
    assert len(rows) == 1 and "Alpha" in rows[0]
    assert (await browser.get("/access-log?app=not-a-uuid")).status_code == 404


async def test_the_access_log_says_how_precisely_each_read_was(
    browser: httpx.AsyncClient, member: Member, vault: Vault
) -> None:
    item = await issue(member.id, await register(vault), scopes=["score:reach:atleast:60"])
    principal = await consent.resolve_bearer(item.access_token)
    assert principal is not None
    await consent.authorize_read(
        principal=principal, scope="score:reach:atleast:60", resource="score:reach"
    )
    page = (await browser.get("/access-log")).text
    assert "read whether your Reach score is at least 60" in page


async def test_member_pages_need_login(client: httpx.AsyncClient, db: str) -> None:
    for path in ("/apps", "/access-log", "/developer"):
        response = await client.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login")


async def test_developer_registers_an_app_and_sees_the_secret_once(
    browser: httpx.AsyncClient, member: Member
) -> None:
    response = await post(
        browser,
        "/developer/apps",
        "/developer",
        name="My App",
        homepage="https://my.example",
        redirect_uris="https://my.example/cb\nhttp://127.0.0.1:9000/cb",
        client_type="confidential",
    )
    assert response.status_code == 200
    secret = re.search(r"<code>(coop_cs_[^<]+)</code>", response.text)
    assert secret
    app = await App.get(owner_id=member.id)
    assert app.redirect_uris == ["https://my.example/cb", "http://127.0.0.1:9000/cb"]
    assert secret.group(1) not in (await browser.get("/developer")).text


async def test_developer_sees_the_webhook_secret_once_and_it_signs_the_notices(
    browser: httpx.AsyncClient, member: Member, vault: Vault
) -> None:
    response = await post(
        browser,
        "/developer/apps",
        "/developer",
        name="Hooked",
        redirect_uris="http://127.0.0.1:9000/cb",
        webhook_url="https://hooked.example/coop",
        client_type="public",
    )
    assert response.status_code == 200
    found = re.search(r"<code>(coop_whsec_[^<]+)</code>", response.text)
    assert found and "coop_cs_" not in response.text
    app = await App.get(owner_id=member.id)
    assert apps.webhook_secret_of(vault, app) == found.group(1)
    assert found.group(1) not in (await browser.get("/developer")).text


async def test_developer_registration_errors_are_shown_with_their_code(
    browser: httpx.AsyncClient,
) -> None:
    response = await post(
        browser, "/developer/apps", "/developer", name="X", redirect_uris="http://x.example/cb"
    )
    assert response.status_code == 400
    assert "invalid_redirect_uri" in response.text


async def test_consent_page_marks_member_registered_apps_as_unreviewed(
    browser: httpx.AsyncClient, member: Member, vault: Vault
) -> None:
    from tests.oauth.support import authorize_params, pkce

    reg = await register(vault, owner_id=member.id)
    page = await browser.get("/oauth/authorize", params=authorize_params(reg, pkce()[1]))
    assert "not reviewed by the operator" in page.text


async def test_developer_creates_and_revokes_a_personal_access_token(
    browser: httpx.AsyncClient, member: Member
) -> None:
    response = await post(
        browser,
        "/developer/tokens",
        "/developer",
        token_name="laptop",
        token_scope=["profile", "member:manage"],
        token_lifetime="90d",
    )
    assert response.status_code == 200
    found = re.search(r"<code>(coop_pat_[^<]+)</code>", response.text)
    assert found
    principal = await consent.resolve_bearer(found.group(1))
    assert principal is not None and principal.scopes == frozenset({"profile", "member:manage"})
    row = await PersonalToken.get(member_id=member.id)
    revoke = await post(browser, f"/developer/tokens/{row.id}/revoke", "/developer")
    assert revoke.status_code == 303
    assert await consent.resolve_bearer(found.group(1)) is None


async def test_developer_deletes_own_app(
    browser: httpx.AsyncClient, member: Member, vault: Vault
) -> None:
    reg = await register(vault, owner_id=member.id)
    response = await post(browser, f"/developer/apps/{reg.app.id}/delete", "/developer")
    assert response.status_code == 303
    assert await App.filter(id=reg.app.id).count() == 0


async def test_grant_history_page_lists_every_event(
    browser: httpx.AsyncClient, member: Member, vault: Vault
) -> None:
    item = await issue(member.id, await register(vault, name="Histo"))
    await consent.pause_sharing(member_id=member.id)
    await consent.resume_sharing(member_id=member.id)
    await consent.revoke_grant(member_id=member.id, grant_id=item.grant.id)
    page = await browser.get(f"/apps/grants/{item.grant.id}")
    assert page.status_code == 200
    text = page.text.split("<tbody>", 1)[1]
    positions = [text.index(k) for k in ("Created", "Paused", "Resumed", "Revoked")]
    assert positions == sorted(positions)
    other = await make_member(vault)
    foreign = await issue(other.id, await register(vault))
    assert (await browser.get(f"/apps/grants/{foreign.grant.id}")).status_code == 404
