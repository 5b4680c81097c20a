"""One-shot flash messages carried across a redirect in a short-lived, HMAC-signed cookie.

The cookie holds only the message text and its kind (never secrets or member data), signed with
the vault's keyed hash so nobody can make coop display text of their choosing.
"""

from __future__ import annotations

import base64
import hmac
import json
from dataclasses import dataclass
from typing import Literal

from starlette.requests import HTTPConnection
from starlette.responses import RedirectResponse, Response
from starlette.types import Receive, Scope, Send

from coop.http.runtime import Runtime, get_runtime
from coop.types import utcnow

FLASH_COOKIE = "coop_flash"
SECURE_FLASH_COOKIE = "__Host-coop_flash"
FLASH_SECONDS = 60
Kind = Literal["ok", "error"]


@dataclass(frozen=True)
class Flash:
    message: str
    kind: Kind


def _cookie_name(runtime: Runtime) -> str:
    return SECURE_FLASH_COOKIE if runtime.settings.secure_cookies else FLASH_COOKIE


def _sign(runtime: Runtime, payload: str) -> str:
    return runtime.vault.blind_index(payload, purpose="flash")


def encode_flash(runtime: Runtime, flash: Flash) -> str:
    expires = int(utcnow().timestamp()) + FLASH_SECONDS
    raw = json.dumps([flash.kind, flash.message, expires], separators=(",", ":"))
    payload = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
    return f"{payload}.{_sign(runtime, payload)}"


def decode_flash(runtime: Runtime, value: str) -> Flash | None:
    payload, _, signature = value.partition(".")
    if not hmac.compare_digest(signature.encode(), _sign(runtime, payload).encode()):
        return None
    try:
        kind, message, expires = json.loads(base64.urlsafe_b64decode(payload + "==="))
    except (ValueError, TypeError):
        return None
    if expires < utcnow().timestamp() or kind not in ("ok", "error"):
        return None
    return Flash(message=str(message), kind=kind)


def set_flash(runtime: Runtime, response: Response, message: str, kind: Kind = "ok") -> None:
    response.set_cookie(
        _cookie_name(runtime),
        encode_flash(runtime, Flash(message, kind)),
        max_age=FLASH_SECONDS,
        path="/",
        secure=runtime.settings.secure_cookies,
        httponly=True,
        samesite="lax",
    )


def read_flashes(conn: HTTPConnection) -> list[Flash]:
    """The flash this request carries, if any (see `clear_flashes`)."""
    runtime = get_runtime(conn)
    value = conn.cookies.get(_cookie_name(runtime))
    flash = decode_flash(runtime, value) if value else None
    return [flash] if flash else []


def clear_flashes(conn: HTTPConnection, response: Response) -> None:
    """Delete the flash cookie with `response`, so each message shows once."""
    runtime = get_runtime(conn)
    name = _cookie_name(runtime)
    if conn.cookies.get(name):
        response.delete_cookie(
            name, path="/", secure=runtime.settings.secure_cookies, httponly=True, samesite="lax"
        )


class FlashRedirectResponse(RedirectResponse):
    """A 303 that sets its flash cookie when sent (it needs the app's vault to sign it)."""

    def __init__(self, url: str, message: str, kind: Kind = "ok") -> None:
        super().__init__(url, status_code=303)
        self.flash = Flash(message, kind)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime: Runtime = scope["app"].state.runtime
        set_flash(runtime, self, self.flash.message, self.flash.kind)
        await super().__call__(scope, receive, send)


def redirect_with_flash(url: str, message: str, kind: Kind = "ok") -> Response:
    """303 to `url`; the next page shows `message` once (kind "ok" or "error")."""
    return FlashRedirectResponse(url, message, kind)
