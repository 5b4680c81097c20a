"""CSRF protection for forms: a synchronizer token bound to the session or a pre-session.

Logged in, the token is bound to the server-side session id; logged out (sign-up, login), it is
bound to a random pre-session cookie, so login CSRF is refused too. Tokens are an HMAC under a
server key (`Vault.csrf_token`), compared in constant time. Fetch Metadata and Origin are
checked as well (the cross-site guard middleware does it first; this is the second line).
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import FormData
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from coop.errors import CsrfError
from coop.http.auth import cached_session, current_session
from coop.http.runtime import get_runtime

FIELD = "csrf_token"
PRESESSION_COOKIE = "coop_csrf"
SECURE_PRESESSION_COOKIE = "__Host-coop_csrf"
_NEW_PRESESSION = "coop_new_presession"


def presession_cookie_name(conn: HTTPConnection) -> str:
    secure = get_runtime(conn).settings.secure_cookies
    return SECURE_PRESESSION_COOKIE if secure else PRESESSION_COOKIE


def _binding(conn: HTTPConnection, *, mint: bool) -> str | None:
    resolved = cached_session(conn)
    if resolved is not None:
        return f"session:{resolved[1].id}"
    state = conn.scope.setdefault("state", {})
    value = conn.cookies.get(presession_cookie_name(conn)) or state.get(_NEW_PRESESSION)
    if not value and mint:
        value = secrets.token_urlsafe(32)
        state[_NEW_PRESESSION] = value
    return f"presession:{value}" if value else None


def csrf_token(conn: HTTPConnection) -> str:
    """The token for forms on this page (mints a pre-session when a visitor has none)."""
    binding = _binding(conn, mint=True)
    assert binding is not None
    return get_runtime(conn).vault.csrf_token(binding)


def attach_presession_cookie(conn: HTTPConnection, response: Response) -> None:
    """Set the pre-session cookie on `response` if this request minted one."""
    value = conn.scope.get("state", {}).get(_NEW_PRESESSION)
    if value:
        settings = get_runtime(conn).settings
        response.set_cookie(
            presession_cookie_name(conn),
            value,
            path="/",
            secure=settings.secure_cookies,
            httponly=True,
            samesite="lax",
        )


def _from_this_site(request: Request) -> bool:
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    issuer = urlsplit(get_runtime(request).settings.issuer)
    return origin == f"{issuer.scheme}://{issuer.netloc}"


async def read_form(request: Request, **limits: Any) -> FormData:
    """The posted form, after the CSRF checks (CsrfError, 403, when one fails).

    `limits` pass through to `Request.form` (max_files, max_fields, max_part_size).
    """
    if not _from_this_site(request):
        raise CsrfError()
    await current_session(request)
    form = await request.form(**limits)
    sent = form.get(FIELD)
    binding = _binding(request, mint=False)
    if not isinstance(sent, str) or binding is None:
        raise CsrfError()
    expected = get_runtime(request).vault.csrf_token(binding)
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        raise CsrfError()
    return form


def form_text(form: FormData, name: str) -> str:
    """A text field of a posted form ("" when missing or a file upload)."""
    value = form.get(name)
    return value if isinstance(value, str) else ""
