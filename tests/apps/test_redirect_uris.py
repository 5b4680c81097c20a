"""Redirect URIs are strict (OA-02) and only their checked origin reaches a header (OA-17):
whatever a developer registers, the consent page answers with a well-formed CSP, never 500."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from coop.apps.models import App
from coop.apps.redirects import parse_redirect_uri
from coop.errors import InvalidRedirectUriError
from coop.http.middleware import CSP
from coop.oauth.authorize import consent_csp
from coop.oauth.responses import redirect_to_client
from coop.vault import Vault
from tests.apps.test_cli import coop
from tests.oauth import support
from tests.web.journeys import log_in_new_member, page_token

# CSP3 §2.3.1 source expressions coop may emit in form-action.
_HOST_SOURCE = re.compile(r"https?://[a-z0-9-]+(?:\.[a-z0-9-]+)*(?::[0-9]{1,5})?\Z")
_SCHEME_SOURCE = re.compile(r"https?:\Z")
_DIRECTIVES = [part.split()[0] for part in CSP.split(";")]

HOSTILE = [
    "https://☃.example/cb",
    "https://bücher.example/cb",
    "https://a.example;sandbox/cb",
    "https://a.example;script-src * 'unsafe-inline'/cb",
    "https://a.example,b.example/cb",
    "https://a.example'/cb",
    'https://a.example"/cb',
    "https://a.example /cb",
    "https://a.example\t/cb",
    "https://a.example\r\nSet-Cookie: x=1/cb",
    "https://a.example/cb;sandbox",
    "https://a.example/c'b",
    "https://a.example/cb?x=1,2",
    "https://a.example/%zz",
    "https://a.example/ü",
    "https://0x7f.1/cb",
    "https://1.2.3/cb",
    "https://127.000.000.001/cb",
    "https://a..example/cb",
    "https://a.example./cb",
    "https://-a.example/cb",
    "https://a_b.example/cb",
    "https://xn--zz.example/cb",
    "https://a.example:0/cb",
    "https://a.example:65536/cb",
    "https://a.example:/cb",
    "https://[::1%25eth0]/cb",
    "https://[not-v6]/cb",
    "https://a.example\\@evil.example/cb",
    "HTTPS://a.example/cb",
    "http://evil.example/cb",
    "javascript:alert(1)//https://a.example/",
    "data:text/html,x",
]

ACCEPTED = {
    "https://app.example/cb": "https://app.example",
    "https://App.Example:8443/cb?tenant=1&x=(2)": "https://app.example:8443",
    "https://xn--bcher-kva.example/cb": "https://xn--bcher-kva.example",
    "http://127.0.0.1:8080/cb": "http://127.0.0.1:8080",
    "http://localhost/cb": "http://localhost",
    "http://[::1]:8080/cb": "http:",
    "https://[2001:db8::1]/cb": "https:",
    "https://203.0.113.7/cb": "https://203.0.113.7",
}


def assert_well_formed_csp(value: str) -> None:
    """ASCII printable, exactly coop's directives, and form-action names 'self' plus one
    valid source expression."""
    assert value.isascii() and value.isprintable(), value
    directives = [part.split() for part in value.split(";")]
    assert [d[0] for d in directives] == _DIRECTIVES
    form_action = next(d for d in directives if d[0] == "form-action")
    assert form_action[1] == "'self'" and len(form_action) == 3, form_action
    assert _HOST_SOURCE.match(form_action[2]) or _SCHEME_SOURCE.match(form_action[2])


@pytest.mark.parametrize("uri", HOSTILE)
def test_hostile_redirect_uris_are_refused(uri: str) -> None:
    with pytest.raises(InvalidRedirectUriError) as caught:
        parse_redirect_uri(uri)
    assert caught.value.code == "invalid_redirect_uri"


def test_a_unicode_host_is_refused_with_its_idna_form_suggested() -> None:
    with pytest.raises(InvalidRedirectUriError) as caught:
        parse_redirect_uri("https://bücher.example/cb")
    assert "https://xn--bcher-kva.example/cb" in caught.value.message


@pytest.mark.parametrize(("uri", "source"), ACCEPTED.items())
def test_accepted_redirect_uris_give_exactly_their_origin_to_the_csp(uri: str, source: str) -> None:
    origin = parse_redirect_uri(uri)
    assert origin.csp_source() == source
    assert_well_formed_csp(consent_csp(origin))


# --- generated families: anything accepted yields a valid CSP and a safe Location ----------

_NASTY = [
    *";,'\"` \t\r\n\\<>{}|^[]@:/?#%*!$&()+=~._-",
    "\x00",
    "\x7f",
    "é",
    "☃",
    "ﬀ",
    "\u200b",
]
_clean_label = st.from_regex(r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?", fullmatch=True)
_nasty_label = st.text(
    alphabet=st.sampled_from(list("abcxyz019-") + _NASTY), min_size=1, max_size=12
)
_label = st.one_of(_clean_label, _nasty_label)
_host = st.one_of(
    st.lists(_label, min_size=1, max_size=4).map(".".join),
    st.sampled_from(
        ["127.0.0.1", "[::1]", "localhost", "[2001:db8::1]", "0x7f.1", "xn--n3h", "xn--bcher-kva"]
    ),
)
_port = st.one_of(
    st.just(""), st.integers(-1, 70000).map(lambda p: f":{p}"), _label.map(":".__add__)
)
_rest = st.text(alphabet=st.sampled_from([*"abc/?=&%0F!$()+:@~._-", *_NASTY]), max_size=20)
_uris = st.builds(
    lambda scheme, host, port, rest: f"{scheme}{host}{port}/{rest}",
    st.sampled_from(["https://", "http://", "HTTPS://", "https:/", "javascript:", ""]),
    _host,
    _port,
    _rest,
)


def _accepted_or_none(uri: str) -> Any:
    try:
        return parse_redirect_uri(uri)
    except InvalidRedirectUriError:
        return None


@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
@given(_uris)
def test_any_accepted_redirect_uri_gives_a_valid_csp_and_a_safe_location(uri: str) -> None:
    origin = _accepted_or_none(uri)
    if origin is None:
        return
    assert uri.isascii() and not set(uri) & set(";,'\" \t\r\n\\#*")
    assert_well_formed_csp(consent_csp(origin))
    location = redirect_to_client(
        uri, [("code", "c")], issuer="http://127.0.0.1:8000", state="s", after_post=True
    ).headers["location"]
    assert location.startswith(uri) and location.isascii() and location.isprintable()


def generated_accepted(count: int) -> list[str]:
    """Accepted URIs drawn from the families above (for the end-to-end checks)."""
    found: list[str] = []

    @settings(
        max_examples=3000,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(_uris)
    def collect(uri: str) -> None:
        if len(found) < count and _accepted_or_none(uri) is not None:
            found.append(uri)

    collect()
    return found


# --- every way in: the developer page, the CLI; and the consent page afterwards -------------


async def _register_on_developer_page(client: httpx.AsyncClient, uri: str) -> httpx.Response:
    token = await page_token(client, "/developer")
    return await client.post(
        "/developer/apps",
        data={"csrf_token": token, "name": "Gen", "redirect_uris": uri, "client_type": "public"},
    )


async def test_the_developer_page_refuses_every_hostile_uri_with_a_clear_400(
    client: httpx.AsyncClient,
) -> None:
    await log_in_new_member(client)
    for uri in HOSTILE:
        response = await _register_on_developer_page(client, uri)
        assert response.status_code == 400, uri
        assert "invalid_redirect_uri" in response.text
    assert await App.all().count() == 0


async def test_every_accepted_uri_registers_and_its_consent_page_has_a_valid_csp(
    client: httpx.AsyncClient,
) -> None:
    await log_in_new_member(client)
    generated = generated_accepted(25)
    assert len(generated) == 25  # the families do reach accepted URIs
    for uri in [*ACCEPTED, *generated]:
        response = await _register_on_developer_page(client, uri)
        assert response.status_code == 200, (uri, response.text)
        app = [a for a in await App.all() if a.redirect_uris == [uri]][-1]
        params = support.authorize_params(
            support.RegisteredApp(app, None), support.pkce()[1], scope="profile"
        )
        page = await client.get("/oauth/authorize", params=params)
        assert page.status_code == 200, (uri, page.text)
        assert_well_formed_csp(page.headers["content-security-policy"])


@pytest.mark.parametrize("uri", ["https://a.example;sandbox/cb", "https://☃.example/cb"])
async def test_the_cli_refuses_a_hostile_uri_with_exit_2_and_one_line(
    db: str, tmp_path: Path, uri: str
) -> None:
    result = coop(db, tmp_path, "app", "create", "--name", "A", "--redirect-uri", uri)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "redirect URI" in result.stderr
    assert await App.all().count() == 0


@pytest.mark.parametrize(
    "stored", ["https://☃.example/cb", "https://a.example;sandbox/cb", "https://a.example/c b"]
)
async def test_a_bad_uri_stored_before_the_rules_gets_a_clean_refusal_never_a_redirect(
    client: httpx.AsyncClient, vault: Vault, stored: str
) -> None:
    await log_in_new_member(client)
    reg = await support.register(vault)
    await App.filter(id=reg.app.id).update(redirect_uris=[stored])
    reg.app.redirect_uris = [stored]
    params = support.authorize_params(reg, support.pkce()[1], scope="profile")

    page = await client.get("/oauth/authorize", params=params)
    posted = await client.post(
        "/oauth/authorize",
        data={**params, "decision": "deny", "csrf_token": await page_token(client, "/account")},
    )

    for response in (page, posted):
        assert response.status_code == 400
        assert "location" not in response.headers
        assert "must register it again" in response.text
        assert "Nothing was shared with the app" in response.text
        assert response.headers["content-security-policy"] == CSP
