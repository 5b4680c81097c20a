"""Sign up, log in, log out: the member journeys through server-rendered pages."""

from __future__ import annotations

import httpx

from tests.web.journeys import (
    PASSWORD,
    csrf_token_in,
    log_in,
    log_in_new_member,
    log_out,
    new_credentials,
    post_form,
    session_cookie,
    sign_up,
)


async def test_signup_page_has_labelled_email_and_password_and_a_sign_up_button(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/signup")
    assert response.status_code == 200
    html = response.text
    assert '<label for="email">Email</label>' in html
    assert '<label for="password">Password</label>' in html
    assert '<button type="submit" class="button primary">Sign up</button>' in html
    assert csrf_token_in(html)


async def test_logged_out_header_offers_sign_up_and_log_in_only(client: httpx.AsyncClient) -> None:
    html = (await client.get("/login")).text
    assert '<a href="/signup"' in html and '<a href="/login"' in html
    for link in ('href="/connectors"', 'href="/account"', "Log out"):
        assert link not in html


async def test_new_member_signs_up_logs_in_and_sees_scores(client: httpx.AsyncClient) -> None:
    creds = new_credentials()
    response = await sign_up(client, creds)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    login_page = await client.get("/login")
    assert "If this email was new, your account is ready. Log in to continue." in login_page.text

    response = await log_in(client, creds)
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    home = await client.get("/")
    assert home.status_code == 200
    assert "<title>Scores · coop</title>" in home.text
    assert "No scores yet." in home.text


async def test_flash_message_shows_once(client: httpx.AsyncClient) -> None:
    await sign_up(client, new_credentials())
    assert "your account is ready" in (await client.get("/login")).text
    assert "your account is ready" not in (await client.get("/login")).text


async def test_logged_in_header_has_every_section_and_a_log_out_button(
    client: httpx.AsyncClient,
) -> None:
    await log_in_new_member(client)
    html = (await client.get("/account")).text
    for href, name in [
        ("/", "Scores"),
        ("/connectors", "Connectors"),
        ("/scorers", "Scorers"),
        ("/apps", "Apps"),
        ("/access-log", "Access log"),
        ("/cooperative", "Cooperative"),
        ("/account", "Account"),
    ]:
        assert f'<a href="{href}"' in html and f">{name}</a>" in html
    assert '<a href="/account" aria-current="page">Account</a>' in html
    assert '<form class="inline" method="post" action="/logout">' in html
    assert ">Log out</button>" in html
    assert 'href="/signup"' not in html
    assert '<a class="skip-link" href="#main">' in html and '<main id="main"' in html


async def test_logged_out_visitor_of_the_start_page_is_sent_to_log_in(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2F"


async def test_log_out_ends_the_session_and_returns_to_log_in(client: httpx.AsyncClient) -> None:
    await log_in_new_member(client)
    response = await log_out(client)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert session_cookie(client) is None
    assert "You are logged out." in (await client.get("/login")).text
    assert (await client.get("/account")).status_code == 303


async def test_wrong_password_shows_the_one_login_error(client: httpx.AsyncClient) -> None:
    creds = new_credentials()
    await sign_up(client, creds)
    response = await post_form(
        client, "/login", {"email": creds.email, "password": "not the password"}, page="/login"
    )
    assert response.status_code == 400
    assert "Email or password is incorrect." in response.text
    assert "invalid_credentials" in response.text
    assert session_cookie(client) is None


async def test_email_is_matched_case_insensitively_at_login(client: httpx.AsyncClient) -> None:
    creds = new_credentials()
    await sign_up(client, creds)
    response = await post_form(
        client,
        "/login",
        {"email": "  " + creds.email.upper() + " ", "password": PASSWORD},
        page="/login",
    )
    assert response.status_code == 303


async def test_short_password_is_refused_with_a_clear_message(client: httpx.AsyncClient) -> None:
    response = await post_form(
        client, "/signup", {"email": "short@example.org", "password": "elevenchars"}, page="/signup"
    )
    assert response.status_code == 400
    assert "Choose a password of at least 12 characters." in response.text
    assert "password_too_short" in response.text
    assert 'value="short@example.org"' in response.text


async def test_overlong_password_is_refused(client: httpx.AsyncClient) -> None:
    response = await post_form(
        client, "/signup", {"email": "long@example.org", "password": "x" * 1025}, page="/signup"
    )
    assert response.status_code == 400
    assert "password_too_long" in response.text


async def test_invalid_email_is_refused(client: httpx.AsyncClient) -> None:
    response = await post_form(
        client, "/signup", {"email": "not-an-email", "password": PASSWORD}, page="/signup"
    )
    assert response.status_code == 400
    assert "Enter a valid email address." in response.text


async def test_logged_in_member_visiting_log_in_goes_to_the_start_page(
    client: httpx.AsyncClient,
) -> None:
    await log_in_new_member(client)
    for page in ("/login", "/signup"):
        response = await client.get(page)
        assert response.status_code == 303
        assert response.headers["location"] == "/"


async def test_error_pages_are_html_with_a_code_and_no_trace(client: httpx.AsyncClient) -> None:
    response = await client.get("/no-such-page")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Error code: <code>not_found</code>" in response.text
    assert "Traceback" not in response.text
