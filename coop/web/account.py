"""The account page: profile (email, handle), password change, active sessions."""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from coop.errors import AuthenticationError, InvalidInputError, RateLimitedError, SessionEndedError
from coop.http.auth import clear_session_cookie, current_session, forget_session, require_member
from coop.http.csrf import form_text, read_form
from coop.http.flash import redirect_with_flash
from coop.http.runtime import get_runtime
from coop.members import service
from coop.web.errors import form_error
from coop.web.login import client_address
from coop.web.templating import render


async def _current_session_id(request: Request) -> uuid.UUID:
    resolved = await current_session(request)
    assert resolved is not None
    return resolved[1].id


async def _account_page(
    request: Request, *, handle_error: str | None = None, handle: str | None = None
) -> Response:
    member = await require_member(request)
    runtime = get_runtime(request)
    profile = await service.get_profile(vault=runtime.vault, member=member)
    active = await service.list_sessions(
        vault=runtime.vault,
        settings=runtime.settings,
        member=member,
        current=await _current_session_id(request),
    )
    context = {
        "profile": profile,
        "sessions": active,
        "handle": profile.handle if handle is None else handle,
        "handle_error": handle_error,
    }
    return render(request, "account.html", context, status_code=400 if handle_error else 200)


async def account_page(request: Request) -> Response:
    return await _account_page(request)


async def update_account(request: Request) -> Response:
    member = await require_member(request)
    form = await read_form(request)
    handle = form_text(form, "handle")
    try:
        await service.update_handle(vault=get_runtime(request).vault, member=member, handle=handle)
    except InvalidInputError as exc:
        return await _account_page(request, handle_error=exc.message, handle=handle)
    return redirect_with_flash("/account", "Your handle was saved.")


async def password_page(request: Request) -> Response:
    await require_member(request)
    return render(request, "password.html", {})


async def change_password(request: Request) -> Response:
    member = await require_member(request)
    form = await read_form(request)
    runtime = get_runtime(request)
    try:
        ended = await service.change_password(
            vault=runtime.vault,
            settings=runtime.settings,
            member=member,
            current_password=form_text(form, "current_password"),
            new_password=form_text(form, "new_password"),
            keep_session=await _current_session_id(request),
            client_address=client_address(request),
        )
    except (AuthenticationError, InvalidInputError, RateLimitedError, SessionEndedError) as exc:
        return form_error(request, "password.html", {}, exc)
    others = f" {ended} other session{'s' if ended != 1 else ''} ended." if ended else ""
    return redirect_with_flash("/account", f"Your password was changed.{others}")


async def end_session(request: Request) -> Response:
    member = await require_member(request, next_path="/account")
    await read_form(request)
    session_id: uuid.UUID = request.path_params["session_id"]
    current = await _current_session_id(request)
    await service.end_session(member=member, session_id=session_id)
    if session_id == current:  # ending this browser's own session is logging out
        forget_session(request)
        response = redirect_with_flash("/login", "You are logged out.")
        clear_session_cookie(response, settings=get_runtime(request).settings)
        return response
    return redirect_with_flash("/account", "The session was ended.")


async def end_other_sessions(request: Request) -> Response:
    member = await require_member(request, next_path="/account")
    await read_form(request)
    ended = await service.end_other_sessions(member=member, keep=await _current_session_id(request))
    plural = "s" if ended != 1 else ""
    return redirect_with_flash("/account", f"{ended} other session{plural} ended.")


def routes() -> list[BaseRoute]:
    return [
        Route("/account", account_page, methods=["GET"]),
        Route("/account", update_account, methods=["POST"]),
        Route("/account/password", password_page, methods=["GET"]),
        Route("/account/password", change_password, methods=["POST"]),
        Route("/account/sessions/{session_id:uuid}/end", end_session, methods=["POST"]),
        Route("/account/sessions/end-others", end_other_sessions, methods=["POST"]),
    ]
