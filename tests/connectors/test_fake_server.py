"""The fake-server helper serves a real app on loopback and stops cleanly."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.fakes.server import LiveServer


def _app() -> Starlette:
    async def hello(request: object) -> PlainTextResponse:
        return PlainTextResponse("hello")

    return Starlette(routes=[Route("/hello", hello)])


async def test_live_server_answers_on_loopback_and_stops() -> None:
    with LiveServer(_app()) as server:
        async with httpx.AsyncClient() as client:
            response = await client.get(server.url("/hello"))
        assert response.text == "hello"
        assert server.base_url.startswith("http://127.0.0.1:")
    async with httpx.AsyncClient() as client:
        try:
            await client.get(server.url("/hello"), timeout=1)
        except httpx.ConnectError:
            pass
        else:
            raise AssertionError("server still answering after stop")
