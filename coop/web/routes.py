"""Routes of the member web UI: each page module contributes its `routes()` (one line each)."""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from coop.web import account, connect_oauth, cooperative, leave, login, receipts, scorers, scores
from coop.web import apps as apps_pages
from coop.web import connectors as connector_pages
from coop.web.templating import STATIC_DIR, static_version

YEAR = "public, max-age=31536000, immutable"


class Assets(StaticFiles):
    """Static files. A URL that names the file's version (`static_url`) may be cached for a
    year; any other is revalidated on each use, so a changed file is never served stale."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code in (200, 304):
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            current = query.get("v") == [static_version(path)]
            response.headers["cache-control"] = YEAR if current else "no-cache"
        return response


def routes() -> list[BaseRoute]:
    return [
        *scores.routes(),
        *scorers.routes(),
        *login.routes(),
        *account.routes(),
        *leave.routes(),
        *connector_pages.routes(),
        *connect_oauth.routes(),
        *apps_pages.routes(),
        *receipts.routes(),
        *cooperative.routes(),
        # Only static files are compressed: pages carry the CSRF token next to text a member
        # or an app chose, which compression would expose to BREACH-style length probing.
        Mount("/static", GZipMiddleware(Assets(directory=str(STATIC_DIR))), name="static"),
    ]
