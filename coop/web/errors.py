"""One mapping from errors to responses for the web and plain HTTP endpoints.

JSON for API-ish requests (`Accept: application/json` or non-HTML paths), an HTML page otherwise.
Unexpected exceptions are logged with the request id and shown as a generic page: never a trace.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from coop.db import RETRY_AFTER_SECONDS, UNAVAILABLE_TYPES, is_unavailable
from coop.errors import (
    CoopError,
    DatabaseUnavailableError,
    LoginRequiredError,
    RateLimitedError,
    ReauthRequiredError,
    SessionEndedError,
)

log = logging.getLogger("coop.errors")

_OAUTH_JSON = ("/oauth/token", "/oauth/revoke", "/oauth/introspect")
_JSON_PREFIXES = ("/graphql", "/oauth/token", "/oauth/revoke", "/oauth/introspect", "/.well-known")


def wants_json(request: Request) -> bool:
    if request.url.path.startswith(_JSON_PREFIXES):
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def render_error(request: Request, status: int, code: str, message: str) -> Response:
    if wants_json(request):
        return JSONResponse({"error": code, "message": message}, status)
    from coop.web.templating import render

    return render(
        request,
        "error.html",
        {"status": status, "code": code, "message": message},
        status_code=status,
    )


async def coop_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CoopError)
    if isinstance(exc, LoginRequiredError | ReauthRequiredError) and not wants_json(request):
        # A browser is sent to log in (or confirm its password) and then brought back.
        target = "/login" if isinstance(exc, LoginRequiredError) else "/reauth"
        return RedirectResponse(f"{target}?{urlencode({'next': exc.next_path})}", 303)
    response = render_error(request, exc.status, exc.code, exc.message)
    if isinstance(exc, RateLimitedError):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    messages = {
        404: ("not_found", "There is nothing here."),
        405: ("method_not_allowed", "That method is not allowed here."),
    }
    code, message = messages.get(exc.status_code, ("http_error", str(exc.detail)))
    response = render_error(request, exc.status_code, code, message)
    for key, value in (exc.headers or {}).items():
        response.headers[key] = value
    return response


def unavailable(request: Request, exc: BaseException) -> Response:
    """503 with Retry-After for a database that is down or hung (LD-02, LD-03): an HTML page,
    coop's JSON error, or RFC 6749's error JSON on the OAuth endpoints. Logged without a
    traceback: it is the database's state, not a bug."""
    request_id = request.scope.get("state", {}).get("request_id", "-")
    log.warning(
        "database unavailable",
        extra={"request_id": request_id, "error": type(exc).__name__, "code": "database_down"},
    )
    error = DatabaseUnavailableError()
    if request.url.path.startswith(_OAUTH_JSON):
        body = {"error": "temporarily_unavailable", "error_description": error.message}
        response: Response = JSONResponse(body, 503, headers={"Cache-Control": "no-store"})
    else:
        response = render_error(request, error.status, error.code, error.message)
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


async def database_error(request: Request, exc: Exception) -> Response:
    """The handler for the exception types a database fault raises (coop.db)."""
    if is_unavailable(exc):
        return unavailable(request, exc)
    return await unexpected_error(request, exc)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    if is_unavailable(exc):
        return unavailable(request, exc)
    request_id = request.scope.get("state", {}).get("request_id", "-")
    log.error(
        "unexpected error %s", type(exc).__name__, exc_info=exc, extra={"request_id": request_id}
    )
    return render_error(
        request,
        500,
        "internal_error",
        f"Something went wrong on our side. Reference: {request_id}.",
    )


def fault_handlers() -> Mapping[Any, Any]:
    """Handlers for the exceptions a database fault raises, by class."""
    return dict.fromkeys(UNAVAILABLE_TYPES, database_error)


def exception_handlers() -> Mapping[Any, Any]:
    return {
        CoopError: coop_error,
        HTTPException: http_error,
        **fault_handlers(),
        Exception: unexpected_error,
    }


def form_error(
    request: Request, template: str, context: dict[str, Any], exc: CoopError
) -> Response:
    """A password form's answer to a refused submission: the form again with the error (400,
    or 429 with Retry-After when rate limited); when the session was just ended for too many
    wrong passwords (`session_ended`), the login page with that notice instead."""
    from coop.http.auth import clear_session_cookie, forget_session
    from coop.http.flash import redirect_with_flash
    from coop.http.runtime import get_runtime
    from coop.web.templating import render

    if isinstance(exc, SessionEndedError):
        redirect = redirect_with_flash("/login", exc.message, "error")
        clear_session_cookie(redirect, settings=get_runtime(request).settings)
        forget_session(request)
        return redirect
    status = 429 if isinstance(exc, RateLimitedError) else 400
    response = render(
        request,
        template,
        {**context, "error": exc.message, "error_code": exc.code},
        status_code=status,
    )
    if isinstance(exc, RateLimitedError):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response
