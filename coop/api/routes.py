"""The /graphql route. The endpoint is built on first use from the app's Runtime."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from coop.api.schema import schema
from coop.api.services import ServiceBackend
from coop.api.view import GraphQLEndpoint
from coop.consent import ratelimit
from coop.http.runtime import Runtime


def build_endpoint(runtime: Runtime) -> GraphQLEndpoint:
    settings = runtime.settings
    return GraphQLEndpoint(
        schema,
        ServiceBackend(runtime),
        rate_limit=settings.rate_limit,
        limiter=ratelimit.limiter_for(
            limit=settings.rate_limit,
            shared=not settings.is_sqlite,
            redis_url=settings.redis_url,
        ),
        dev=settings.dev,
    )


async def graphql(scope: Scope, receive: Receive, send: Send) -> None:
    runtime: Runtime = scope["app"].state.runtime
    if runtime.graphql is None:
        runtime.graphql = build_endpoint(runtime)
    await runtime.graphql(scope, receive, send)


async def close(runtime: Runtime) -> None:
    """Release what the endpoint holds (the rate-limit store's connections)."""
    endpoint, runtime.graphql = runtime.graphql, None
    if endpoint is not None:
        await endpoint.aclose()


class _Asgi:
    """Starlette treats a class instance as a raw ASGI app (every method reaches it)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await graphql(scope, receive, send)


def routes() -> list[BaseRoute]:
    return [Route("/graphql", _Asgi())]
