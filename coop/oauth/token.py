"""The token (RFC 6749 §3.2), revocation (RFC 7009) and introspection (RFC 7662) endpoints.

Every response carries Cache-Control: no-store. Client authentication failures are 401
`invalid_client` with WWW-Authenticate.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from coop.apps import service as apps
from coop.apps.models import App
from coop.consent import tokens
from coop.errors import CoopError, InvalidClientError
from coop.http.runtime import get_runtime
from coop.oauth.responses import error_json, from_coop_error, token_json

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FIELDS = 20


class BadRequest(Exception):
    def __init__(self, code: str, description: str) -> None:
        super().__init__(code)
        self.code = code
        self.description = description


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    """RFC 6749 §2.3.1: both parts are form-urlencoded inside the Basic credentials."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidClientError() from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise InvalidClientError()
    return unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))


async def _read_form(request: Request) -> FormData:
    if request.headers.get("content-type", "").split(";")[0].strip() != FORM_TYPE:
        raise BadRequest("invalid_request", f"Send the parameters as {FORM_TYPE}.")
    form = await request.form(max_fields=MAX_FIELDS, max_files=0)
    for key in form:
        if len(form.getlist(key)) > 1:
            raise BadRequest("invalid_request", f"The parameter {key} was sent twice.")
    return form


def _field(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


async def _authenticate(request: Request, form: FormData, *, allow_public: bool) -> App:
    basic = _basic_credentials(request)
    body_id, body_secret = _field(form, "client_id"), _field(form, "client_secret")
    if basic is not None and (body_secret is not None or (body_id and body_id != basic[0])):
        raise BadRequest("invalid_request", "Use one client authentication method.")
    client_id, secret = basic if basic is not None else (body_id, body_secret)
    app = await apps.authenticate_client(client_id=client_id, client_secret=secret)
    if app.public and not allow_public:
        raise InvalidClientError()
    return app


async def token_endpoint(request: Request) -> Response:
    try:
        form = await _read_form(request)
        app = await _authenticate(request, form, allow_public=True)
        grant_type = _field(form, "grant_type")
        if grant_type == "authorization_code":
            code = _field(form, "code")
            if not code:
                raise BadRequest("invalid_request", "Missing code.")
            issued = await tokens.exchange_code(
                code=code,
                client_id=app.client_id,
                redirect_uri=_field(form, "redirect_uri"),
                code_verifier=_field(form, "code_verifier"),
            )
        elif grant_type == "refresh_token":
            refresh_token = _field(form, "refresh_token")
            if not refresh_token:
                raise BadRequest("invalid_request", "Missing refresh_token.")
            issued = await tokens.refresh(
                refresh_token=refresh_token, client_id=app.client_id, scope=_field(form, "scope")
            )
        elif grant_type is None:
            raise BadRequest("invalid_request", "Missing grant_type.")
        else:
            raise BadRequest("unsupported_grant_type", "Use authorization_code or refresh_token.")
    except BadRequest as exc:
        return error_json(exc.code, exc.description)
    except CoopError as exc:
        return from_coop_error(exc)
    return token_json(issued.response())


async def _token_about(request: Request, *, allow_public: bool) -> tuple[App, str] | Response:
    """The shared start of revocation and introspection: an authenticated client asking
    about one `token`. Returns the client and the token, or the error response."""
    try:
        form = await _read_form(request)
        app = await _authenticate(request, form, allow_public=allow_public)
        token = _field(form, "token")
        if not token:
            raise BadRequest("invalid_request", "Missing token.")
    except BadRequest as exc:
        return error_json(exc.code, exc.description)
    except CoopError as exc:
        return from_coop_error(exc)
    return app, token


async def revocation_endpoint(request: Request) -> Response:
    """RFC 7009 §2: 200 whether or not the token existed or belonged to this client."""
    asked = await _token_about(request, allow_public=True)
    if isinstance(asked, Response):
        return asked
    app, token = asked
    await tokens.revoke_token(token=token, client_id=app.client_id)
    return Response(status_code=200, headers={"Cache-Control": "no-store"})


async def introspection_endpoint(request: Request) -> Response:
    """RFC 7662 §2: confidential clients only, and only about their own tokens; anything
    else inactive is exactly {"active": false}."""
    asked = await _token_about(request, allow_public=False)
    if isinstance(asked, Response):
        return asked
    app, token = asked
    info = await tokens.introspect(
        token=token, client_id=app.client_id, issuer=get_runtime(request).settings.issuer
    )
    return token_json(info)


def routes() -> list[BaseRoute]:
    return [
        Route("/oauth/token", token_endpoint, methods=["POST"]),
        Route("/oauth/revoke", revocation_endpoint, methods=["POST"]),
        Route("/oauth/introspect", introspection_endpoint, methods=["POST"]),
    ]
