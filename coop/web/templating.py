"""Jinja2 rendering with autoescaping (never `|safe` on untrusted data) and the page context.

Every template receives `member` (or None), `csrf_token`, `flashes` and `active_nav`.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from coop.consent.disclosure import read_words
from coop.http.auth import cached_session
from coop.http.csrf import attach_presession_cookie, csrf_token
from coop.http.flash import clear_flashes, read_flashes
from coop.types import is_web_url

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

# (navigation key, path prefix): the first match marks the current section in the header.
NAV_PREFIXES = (
    ("scores", "/scores"),
    ("connectors", "/connectors"),
    ("connectors", "/connections"),
    ("scorers", "/scorers"),
    ("apps", "/apps"),
    ("cooperative", "/cooperative"),
    ("developer", "/developer"),
    ("access_log", "/access-log"),
    ("account", "/account"),
    ("signup", "/signup"),
    ("login", "/login"),
)


def active_nav_for(path: str) -> str | None:
    if path == "/":
        return "scores"
    for key, prefix in NAV_PREFIXES:
        if path == prefix or path.startswith(prefix + "/"):
            return key
    return None


def format_time(value: datetime | None) -> str:
    """UTC, minute precision: "2026-11-22 03:04 UTC"."""
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""


TEMPLATES.env.filters["datetime"] = format_time
# An access-log scope as the member reads it ("read whether your Reach score is at least 60").
TEMPLATES.env.filters["read_words"] = read_words
# `{% if url is web_url %}<a href=...>`: only http(s) URLs from plugins and sources become links.
TEMPLATES.env.tests["web_url"] = is_web_url

STATIC_DIR = Path(__file__).parent / "static"


@cache
def static_version(name: str) -> str:
    """A short digest of a static file's content (read once per process)."""
    return hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]


def static_url(name: str) -> str:
    """The URL of a static file, versioned by its content: browsers may cache it for a year
    (see `coop.web.routes.Assets`) and still fetch a changed file at once."""
    return f"/static/{name}?v={static_version(name)}"


TEMPLATES.env.globals["static_url"] = static_url


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, *, status_code: int = 200
) -> HTMLResponse:
    """Render `name` (a template extending base.html) as the response to `request`."""
    resolved = cached_session(request)
    page: dict[str, Any] = {
        "member": resolved[0] if resolved else None,
        "csrf_token": csrf_token(request),
        "active_nav": active_nav_for(request.url.path),
        "flashes": read_flashes(request),
    }
    page.update(context or {})
    response: HTMLResponse = TEMPLATES.TemplateResponse(
        request, name, page, status_code=status_code
    )
    clear_flashes(request, response)
    attach_presession_cookie(request, response)
    return response


__all__ = ["TEMPLATES", "render"]
