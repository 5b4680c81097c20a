"""What an app promises (issue 20, part 1): purposes, retention and a policy URL declared at
registration, shown on the consent page, kept on the grant; a change holds reads until the
member agrees."""

from __future__ import annotations

import re

import httpx
import pytest

from coop.apps import service as apps
from coop.apps.models import App, AppTerms
from coop.apps.terms import MAX_PURPOSE, validate_terms
from coop.consent.bearer import resolve_bearer
from coop.consent.models import Grant, GrantEvent
from coop.errors import InvalidClientMetadataError
from coop.jobs.scoring import ScoringFlow
from coop.members.models import Member
from coop.vault import Vault
from tests.api import conftest as api_fixtures
from tests.api.conftest import give_score
from tests.api.factories import gql
from tests.apps import test_pages as member_pages
from tests.oauth.support import (
    authorize,
    authorize_params,
    consent,
    csrf_from,
    pkce,
    redeem,
    register,
)

pytestmark = pytest.mark.usefixtures("db")
member, browser = member_pages.member, member_pages.browser  # a logged-in member
flow = api_fixtures.flow
SAME_SITE = {"Sec-Fetch-Site": "same-origin"}
READ = '{ viewer { score(scorer: "reach") { value } } }'
PROMISES = {
    "purpose": "To rank your posts among your followers'.",
    "score_purposes": {"reach": "To place you on the weekly leaderboard."},
    "retention_days": 30,
    "policy_uri": "https://ranker.example/privacy",
}


async def test_an_app_may_register_without_promises(vault: Vault) -> None:
    registered = await register(vault)
    assert registered.app.terms_version == 0
    info = registered.client_information()
    assert not {"purpose", "score_purposes", "retention_days", "policy_uri"} & set(info)
    assert await AppTerms.all().count() == 0


async def test_promises_become_version_one_and_client_metadata(vault: Vault) -> None:
    registered = await register(vault, terms=validate_terms(**PROMISES))
    assert registered.app.terms_version == 1
    info = registered.client_information()
    assert {k: info[k] for k in PROMISES} == PROMISES
    row = await AppTerms.get(app_id=registered.app.id, version=1)
    assert row.purpose == PROMISES["purpose"] and row.retention_days == 30


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"policy_uri": "javascript:alert(1)"}, "policy_uri must be an absolute http(s) URL"),
        ({"policy_uri": "ftp://ranker.example/p"}, "policy_uri must be an absolute http(s) URL"),
        ({"policy_uri": "/privacy"}, "policy_uri must be an absolute http(s) URL"),
        ({"policy_uri": "https://x.example/" + "a" * 500}, "at most 500 characters"),
        ({"policy_uri": "https://x.example/a b"}, "policy_uri must be"),
        ({"purpose": "x" * (MAX_PURPOSE + 1)}, "The purpose is 501 characters long"),
        ({"score_purposes": {"reach": "y" * 600}}, "The purpose for reach is 600 characters"),
        ({"score_purposes": {"Not A Scorer": "why"}}, "Not a scorer name"),
        ({"retention_days": -1}, "retention_days must be between 0 and 3650"),
        ({"retention_days": "soon"}, "retention_days must be a whole number"),
        ({"retention_days": 3651}, "retention_days must be between 0 and 3650"),
    ],
)
async def test_bad_promises_are_refused_with_a_clear_error(
    vault: Vault, fields: dict[str, object], says: str
) -> None:
    with pytest.raises(InvalidClientMetadataError) as caught:
        await register(vault, terms=validate_terms(**fields))
    assert caught.value.code == "invalid_client_metadata"
    assert says in caught.value.message
    assert await App.all().count() == 0


async def test_the_same_words_again_make_no_new_version(vault: Vault) -> None:
    registered = await register(vault, terms=validate_terms(**PROMISES))
    again = await apps.change_terms(
        terms=validate_terms(**PROMISES), client_id=registered.app.client_id
    )
    assert again.version == 1
    assert await AppTerms.filter(app_id=registered.app.id).count() == 1


# -- the consent page and the grant ------------------------------------------------------


async def test_consent_page_shows_each_purpose_next_to_its_scope(
    browser: httpx.AsyncClient, vault: Vault
) -> None:
    terms = validate_terms(**{**PROMISES, "purpose": "<b>Ranking</b> & more"})
    registered = await register(vault, terms=terms)
    page = await browser.get("/oauth/authorize", params=authorize_params(registered, pkce()[1]))
    assert page.status_code == 200
    text = page.text
    reach = text.index("Your Reach score")
    assert text.index("Why: To place you on the weekly leaderboard.") > reach
    # profile has no purpose of its own: the app's purpose stands next to it (escaped)
    assert "Why: &lt;b&gt;Ranking&lt;/b&gt; &amp; more" in text and "<b>Ranking" not in text
    assert "The app keeps what it reads for at most 30 days." in text
    assert 'href="https://ranker.example/privacy"' in text
    assert 'name="terms_version" value="1"' in text


async def test_consent_page_says_when_an_app_promised_nothing(
    browser: httpx.AsyncClient, vault: Vault
) -> None:
    registered = await register(vault)
    page = await browser.get("/oauth/authorize", params=authorize_params(registered, pkce()[1]))
    assert "The app has not said why it wants this." in page.text
    assert "The app has not said how long it keeps what it reads." in page.text


async def test_the_grant_keeps_the_version_the_member_saw(
    browser: httpx.AsyncClient, vault: Vault
) -> None:
    registered = await register(vault, terms=validate_terms(**PROMISES))
    flow_ = await authorize(browser, registered)
    grant = await Grant.get(app_id=registered.app.id)
    assert grant.terms_version == 1
    created = await GrantEvent.get(grant_id=grant.id, kind="created")
    assert created.terms_version == 1
    assert flow_.code


async def test_terms_changed_while_the_page_was_open_show_the_page_again(
    browser: httpx.AsyncClient, vault: Vault
) -> None:
    registered = await register(vault, terms=validate_terms(**PROMISES))
    params = authorize_params(registered, pkce()[1])
    page = await browser.get("/oauth/authorize", params=params)
    await apps.change_terms(
        terms=validate_terms(purpose="To sell it."), client_id=registered.app.client_id
    )
    form = {
        **params,
        "csrf_token": csrf_from(page.text),
        "terms_version": "1",
        "decision": "allow",
        "grant_scope": ["profile"],
        "lifetime": "30d",
    }
    response = await browser.post("/oauth/authorize", data=form, headers=SAME_SITE)
    assert response.status_code == 409
    assert "changed what it says it does with your data" in response.text
    assert "Why: To sell it." in response.text and 'name="terms_version" value="2"' in response.text
    assert await Grant.all().count() == 0


# -- a change holds reads until the member agrees ------------------------------------------


async def test_changed_terms_hold_reads_until_the_member_agrees(
    browser: httpx.AsyncClient, vault: Vault, member: Member, flow: ScoringFlow
) -> None:
    await give_score(flow, member)
    registered = await register(vault, terms=validate_terms(**PROMISES))
    tokens = (await redeem(browser, registered, await authorize(browser, registered))).json()
    access, refresh = tokens["access_token"], tokens["refresh_token"]
    assert (await gql(browser, access, READ)).json()["data"]["viewer"]["score"] is not None

    await apps.change_terms(
        terms=validate_terms(purpose="To train advertising models."),
        client_id=registered.app.client_id,
    )
    held = await gql(browser, access, READ)
    assert held.status_code == 401  # exactly as for a paused grant
    assert await resolve_bearer(access) is None
    refused = await browser.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh},
        auth=(registered.app.client_id, registered.client_secret or ""),
    )
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"

    apps_page = (await browser.get("/apps")).text
    assert "Waiting for you:" in apps_page and "Review the new terms" in apps_page
    grant = await Grant.get(app_id=registered.app.id)
    review = await browser.get(f"/apps/grants/{grant.id}/terms")
    assert "To train advertising models." in review.text  # the new words
    assert PROMISES["purpose"].replace("'", "&#39;") in review.text  # next to the old ones

    agreed = await browser.post(
        f"/apps/grants/{grant.id}/agree",
        data={"csrf_token": csrf_from(review.text), "terms_version": "2"},
        headers=SAME_SITE,
    )
    assert agreed.status_code == 303
    assert (await gql(browser, access, READ)).json()["data"]["viewer"]["score"] is not None
    event = await GrantEvent.get(grant_id=grant.id, kind="agreed")
    assert event.terms_version == 2
    history = (await browser.get(f"/apps/grants/{grant.id}")).text
    assert "To train advertising models." in history and "Agreed" in history


async def test_agreeing_to_words_the_app_replaced_again_changes_nothing(
    browser: httpx.AsyncClient, vault: Vault, member: Member
) -> None:
    registered = await register(vault, terms=validate_terms(**PROMISES))
    await authorize(browser, registered)
    grant = await Grant.get(app_id=registered.app.id)
    cid = registered.app.client_id
    await apps.change_terms(terms=validate_terms(purpose="Two."), client_id=cid)
    review = await browser.get(f"/apps/grants/{grant.id}/terms")
    await apps.change_terms(terms=validate_terms(purpose="Three."), client_id=cid)
    stale = await browser.post(
        f"/apps/grants/{grant.id}/agree",
        data={"csrf_token": csrf_from(review.text), "terms_version": "2"},
        headers=SAME_SITE,
    )
    assert stale.status_code == 303 and stale.headers["location"].endswith("/terms")
    assert (await Grant.get(id=grant.id)).terms_version == 1


async def test_owner_changes_terms_on_the_developer_page(
    browser: httpx.AsyncClient, vault: Vault, member: Member
) -> None:
    registered = await apps.create_app(
        name="Mine", redirect_uris=["https://mine.example/cb"], owner_id=member.id
    )
    page = (await browser.get("/developer")).text
    bad = await browser.post(
        f"/developer/apps/{registered.app.id}/terms",
        data={"csrf_token": csrf_from(page), "policy_uri": "file:///etc/passwd"},
        headers=SAME_SITE,
    )
    assert bad.status_code == 400 and "invalid_client_metadata" in bad.text
    good = await browser.post(
        f"/developer/apps/{registered.app.id}/terms",
        data={
            "csrf_token": csrf_from(page),
            "purpose": "To show you a chart.",
            "score_purposes": "reach: to chart it\n",
            "retention_days": "0",
        },
        headers=SAME_SITE,
    )
    assert good.status_code == 303
    row = await AppTerms.get(app_id=registered.app.id, version=1)
    assert row.score_purposes == {"reach": "to chart it"} and row.retention_days == 0
    page = (await browser.get("/developer")).text
    assert re.search(r"version 1\)", page) and "reach: to chart it" in page


async def test_register_on_the_developer_page_refuses_an_overlong_purpose(
    browser: httpx.AsyncClient,
) -> None:
    page = (await browser.get("/developer")).text
    response = await browser.post(
        "/developer/apps",
        data={
            "csrf_token": csrf_from(page),
            "name": "Long",
            "redirect_uris": "https://long.example/cb",
            "purpose": "z" * 501,
        },
        headers=SAME_SITE,
    )
    assert response.status_code == 400
    assert "The purpose is 501 characters long; at most 500 are allowed." in response.text
    assert await App.all().count() == 0


async def test_a_plain_consent_still_works(browser: httpx.AsyncClient, vault: Vault) -> None:
    registered = await register(vault)
    response = await consent(browser, authorize_params(registered, pkce()[1]))
    assert response.status_code == 303
