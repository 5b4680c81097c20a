"""The /graphql route. The endpoint is built on first use from the app's Runtime."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from coop.api.schema import schema
from coop.api.services import ServiceBackend
from coop.api.view import GraphQLEndpoint
from coop.http.runtime import Runtime

_KEY = "graphql_endpoint"


def build_endpoint(runtime: Runtime) -> GraphQLEndpoint:
    settings = runtime.settings
    return GraphQLEndpoint(
        schema,
        ServiceBackend(runtime),
        rate_limit=settings.rate_limit,
        dev=settings.dev,
    )


async def graphql(scope: Scope, receive: Receive, send: Send) -> None:
    runtime: Runtime = scope["app"].state.runtime
    endpoint = runtime.extras.get(_KEY)
    if endpoint is None:
        endpoint = runtime.extras[_KEY] = build_endpoint(runtime)
    await endpoint(scope, receive, send)


class _Asgi:
    """Starlette treats a class instance as a raw ASGI app (every method reaches it)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await graphql(scope, receive, send)


def routes() -> list[BaseRoute]:
    return [Route("/graphql", _Asgi())]
