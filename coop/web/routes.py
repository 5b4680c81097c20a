"""Routes of the member web UI: each page module contributes its `routes()` (one line each)."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from coop.web import account, connect_oauth, leave, login, scorers, scores
from coop.web import apps as apps_pages
from coop.web import connectors as connector_pages

STATIC_DIR = Path(__file__).parent / "static"


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
        Mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static"),
    ]
