"""OAuth responses: authlib's error classes (one per RFC error code) rendered as JSON, and
redirects back to the client that always carry `iss` (RFC 9207)."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlencode

from authlib.oauth2.rfc6749 import errors as oauth_errors
from starlette.responses import JSONResponse, RedirectResponse, Response

from coop.errors import CoopError

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

ERROR_CLASSES: dict[str, type[oauth_errors.OAuth2Error]] = {
    cls.error: cls
    for cls in (
        oauth_errors.InvalidRequestError,
        oauth_errors.InvalidClientError,
        oauth_errors.InvalidGrantError,
        oauth_errors.UnauthorizedClientError,
        oauth_errors.UnsupportedGrantTypeError,
        oauth_errors.UnsupportedResponseTypeError,
        oauth_errors.InvalidScopeError,
        oauth_errors.AccessDeniedError,
        oauth_errors.UnsupportedTokenTypeError,
    )
}


def _ascii(description: str) -> str:
    # RFC 6749 §5.2: error_description is limited to %x20-21 / %x23-5B / %x5D-7E.
    return "".join(c for c in description if 0x20 <= ord(c) <= 0x7E and c not in '"\\')


def oauth_error(code: str, description: str = "") -> oauth_errors.OAuth2Error:
    cls = ERROR_CLASSES.get(code, oauth_errors.InvalidRequestError)
    # Some subclasses take other constructor arguments; the base one takes the description.
    error = cls.__new__(cls)
    oauth_errors.OAuth2Error.__init__(error, description=_ascii(description) or None)
    if code == "invalid_client":
        error.status_code = 401  # RFC 6749 §5.2, with WWW-Authenticate: Basic (OA-09)
    return error


def error_json(code: str, description: str = "", *, no_store: bool = True) -> Response:
    """An RFC 6749 §5.2 error body with authlib's status and headers for that code."""
    error = oauth_error(code, description)
    headers = dict(error.get_headers())
    headers.pop("Content-Type", None)
    if code == "invalid_client":
        headers["WWW-Authenticate"] = 'Basic realm="coop", error="invalid_client"'
    if no_store:
        headers.update(NO_STORE)
    return JSONResponse(dict(error.get_body()), status_code=error.status_code, headers=headers)


def from_coop_error(exc: CoopError) -> Response:
    return error_json(exc.code, exc.message)


def token_json(body: dict[str, object]) -> Response:
    return JSONResponse(body, headers=NO_STORE)


def redirect_to_client(
    redirect_uri: str,
    params: Iterable[tuple[str, str]],
    *,
    issuer: str,
    state: str | None,
    after_post: bool,
) -> Response:
    """A redirect to the client with `params`, the exact `state` and `iss` (RFC 9207 §2).

    303 after a form POST (never 307, which would re-post the member's form to the client).
    """
    items = list(params)
    if state is not None:
        items.append(("state", state))
    items.append(("iss", issuer))
    # The registered query is kept byte for byte (RFC 6749 §3.1.2: the client's own query
    # must be retained); our parameters are appended after it, never re-encoding it.
    joiner = "" if redirect_uri.endswith(("?", "&")) else "&" if "?" in redirect_uri else "?"
    location = redirect_uri + joiner + urlencode(items)
    return RedirectResponse(location, status_code=303 if after_post else 302, headers=NO_STORE)
