"""Sign up, log in, log out and re-authenticate (step-up) pages."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from coop.apps import service as apps
from coop.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    RateLimitedError,
    SessionEndedError,
)
from coop.http.auth import (
    clear_session_cookie,
    current_member,
    current_session,
    forget_session,
    require_member,
    safe_next_path,
    session_token,
    set_session_cookie,
)
from coop.http.csrf import form_text, read_form
from coop.http.flash import redirect_with_flash
from coop.http.runtime import get_runtime
from coop.members import service
from coop.web.errors import form_error
from coop.web.templating import render

SIGNED_UP = "If this email was new, your account is ready. Log in to continue."
LOGGED_OUT = "You are logged out."


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def requesting_app(next_path: str) -> str | None:
    """The name of the app whose authorization request sent the visitor to log in, if any:
    the page says who is asking before the member decides to log in at all."""
    parts = urlsplit(next_path)
    if parts.path != "/oauth/authorize":
        return None
    client_id = parse_qs(parts.query).get("client_id", [""])[0][:200]
    app = await apps.get_app(client_id=client_id) if client_id else None
    return app.name if app else None


async def page_context(next_path: str, email: str = "") -> dict[str, object]:
    return {"email": email, "next": next_path, "app_name": await requesting_app(next_path)}


def login_url(next_path: str) -> str:
    return "/login" if next_path == "/" else "/login?" + urlencode({"next": next_path})


async def signup_page(request: Request) -> Response:
    next_path = safe_next_path(request.query_params.get("next"))
    if await current_member(request):
        return RedirectResponse(next_path, 303)
    return render(request, "signup.html", await page_context(next_path))


async def signup(request: Request) -> Response:
    form = await read_form(request)
    email, password = form_text(form, "email"), form_text(form, "password")
    next_path = safe_next_path(form_text(form, "next"))
    runtime = get_runtime(request)
    try:
        await service.create_member(vault=runtime.vault, email=email, password=password)
    except ConflictError:
        # No account enumeration: an existing email gets exactly the success response.
        pass
    except InvalidInputError as exc:
        context = {**await page_context(next_path, email), "error": exc.message}
        return render(request, "signup.html", {**context, "error_code": exc.code}, status_code=400)
    return redirect_with_flash(login_url(next_path), SIGNED_UP)


async def login_page(request: Request) -> Response:
    next_path = safe_next_path(request.query_params.get("next"))
    if await current_member(request):
        return RedirectResponse(next_path, 303)
    return render(request, "login.html", await page_context(next_path))


async def login(request: Request) -> Response:
    form = await read_form(request)
    email, password = form_text(form, "email"), form_text(form, "password")
    next_path = safe_next_path(form_text(form, "next"))
    runtime = get_runtime(request)
    try:
        _, token = await service.log_in(
            vault=runtime.vault,
            settings=runtime.settings,
            email=email,
            password=password,
            client_address=client_address(request),
            user_agent=request.headers.get("user-agent"),
            replacing_token=session_token(request),
        )
    except (AuthenticationError, RateLimitedError) as exc:
        return form_error(request, "login.html", await page_context(next_path, email), exc)
    redirect = RedirectResponse(next_path, 303)
    set_session_cookie(redirect, settings=runtime.settings, token=token)
    return redirect


async def logout(request: Request) -> Response:
    runtime = get_runtime(request)
    token = session_token(request)
    if await current_member(request) is None or token is None:
        response: Response = RedirectResponse("/login", 303)
    else:
        await read_form(request)
        await service.log_out(vault=runtime.vault, token=token)
        response = redirect_with_flash("/login", LOGGED_OUT)
    forget_session(request)
    clear_session_cookie(response, settings=runtime.settings)
    return response


async def reauth_page(request: Request) -> Response:
    await require_member(request)
    next_path = safe_next_path(request.query_params.get("next"))
    return render(request, "reauth.html", {"next": next_path})


async def reauth(request: Request) -> Response:
    member = await require_member(request)
    form = await read_form(request)
    next_path = safe_next_path(form_text(form, "next"))
    resolved = await current_session(request)
    assert resolved is not None
    runtime = get_runtime(request)
    try:
        await service.reauthenticate(
            vault=runtime.vault,
            settings=runtime.settings,
            member=member,
            session_id=resolved[1].id,
            password=form_text(form, "password"),
            client_address=client_address(request),
        )
    except (AuthenticationError, RateLimitedError, SessionEndedError) as exc:
        return form_error(request, "reauth.html", {"next": next_path}, exc)
    return RedirectResponse(next_path, 303)


def routes() -> list[BaseRoute]:
    return [
        Route("/signup", signup_page, methods=["GET"]),
        Route("/signup", signup, methods=["POST"]),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/reauth", reauth_page, methods=["GET"]),
        Route("/reauth", reauth, methods=["POST"]),
    ]


# Re-exported for page modules that import it from here (it lives in coop.http.csrf).
__all__ = ["client_address", "form_text", "routes"]
