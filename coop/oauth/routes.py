"""The authorization server's routes."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from coop.oauth import authorize, token
from coop.oauth.metadata import metadata_endpoint


def routes() -> list[BaseRoute]:
    return [
        Route("/.well-known/oauth-authorization-server", metadata_endpoint, methods=["GET"]),
        *authorize.routes(),
        *token.routes(),
    ]
