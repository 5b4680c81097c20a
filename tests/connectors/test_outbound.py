"""The outbound client's SSRF guard, pinning, redirects, size cap and time limits (SY-09)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from coop.connectors import spec
from coop.connectors.outbound import Guard, Limits, OutboundClient, is_public
from coop.errors import UrlNotAllowedError
from tests.fakes.blog import Blog
from tests.fakes.server import LiveServer

LOOPBACK = [ipaddress.ip_network("127.0.0.1/32")]


def fake_dns(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> Sequence[str]:
        if host not in table:
            raise UrlNotAllowedError("That address does not resolve.")
        return table[host]

    return resolve


DNS = fake_dns(
    {
        "intranet.test": ["10.0.0.5"],
        "mixed.test": ["93.184.216.34", "192.168.1.10"],
        "metadata.test": ["169.254.169.254"],
        "v6only.test": ["fd00::1"],
        "blog.test": ["127.0.0.1"],
        "public.test": ["93.184.216.34"],
    }
)


class Canary:
    """A listener on loopback that records every request it receives."""

    def __init__(self) -> None:
        self.hits: list[tuple[str, str]] = []

    def app(self) -> Starlette:
        async def any_path(request: Request) -> Response:
            self.hits.append((request.url.path, request.headers.get("host", "")))
            if request.url.path == "/loop":
                return RedirectResponse("/loop", status_code=302)
            return JSONResponse({"host": request.headers.get("host")})

        return Starlette(routes=[Route("/{path:path}", any_path, methods=["GET", "POST"])])


@pytest.fixture
def canary() -> Iterator[tuple[Canary, LiveServer]]:
    probe = Canary()
    with LiveServer(probe.app()) as server:
        yield probe, server


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:5432/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:a9fe:a9fe]/",  # IPv4-mapped 169.254.169.254
        "http://0.0.0.0/",
        "http://10.0.0.5/",
        "http://172.16.3.4/",
        "http://192.168.0.1/",
        "http://100.64.0.1/",
        "http://224.0.0.1/",
        "http://[fe80::1]/",
        "http://[fd00::1]/",
        "http://[2002:7f00:1::]/",  # 6to4 wrapping 127.0.0.1
        "http://[64:ff9b::a00:5]/",  # NAT64 wrapping 10.0.0.5
        "http://intranet.test/feed",
        "http://mixed.test/feed",
        "http://metadata.test/",
        "http://v6only.test/",
        "http://nowhere.test/",
        "gopher://public.test/",
        "http://user:secret@public.test/",
        "not a url",
    ],
)
async def test_the_guard_refuses_non_public_destinations(url: str) -> None:
    with pytest.raises(UrlNotAllowedError) as caught:
        await Guard(resolver=DNS).check(url)
    assert caught.value.code == "url_not_allowed"


async def test_the_guard_accepts_public_addresses_and_pins_the_resolved_ip() -> None:
    checked, ip = await Guard(resolver=DNS).check("https://public.test/feed.xml")
    assert (checked.host, ip) == ("public.test", "93.184.216.34")


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2001:4860:4860::8888", True),
        ("127.0.0.2", False),
        ("::", False),
        ("198.18.0.1", False),
        ("255.255.255.255", False),
        ("::ffff:8.8.8.8", True),
    ],
)
def test_public_address_classification(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


async def test_a_loopback_service_gets_no_connection_without_the_allow_list(
    canary: tuple[Canary, LiveServer],
) -> None:
    probe, server = canary
    async with OutboundClient(Guard()) as http:
        with pytest.raises(UrlNotAllowedError):
            await http.get(server.url("/secret"))
    assert probe.hits == []


async def test_the_allow_list_admits_an_operator_network(
    canary: tuple[Canary, LiveServer],
) -> None:
    probe, server = canary
    async with OutboundClient(Guard(LOOPBACK)) as http:
        response = await http.get(server.url("/ok"))
    assert response.status_code == 200
    assert probe.hits == [("/ok", f"127.0.0.1:{server.port}")]


async def test_requests_go_to_the_checked_ip_with_the_original_host_header(
    canary: tuple[Canary, LiveServer],
) -> None:
    # blog.test exists only in the guard's resolver: the request can only arrive if the
    # client connected to the IP the guard checked instead of resolving the name again.
    _probe, server = canary
    async with OutboundClient(Guard(LOOPBACK, resolver=DNS)) as http:
        response = await http.get(f"http://blog.test:{server.port}/pinned")
    assert response.json() == {"host": f"blog.test:{server.port}"}
    assert str(response.request.url) == f"http://blog.test:{server.port}/pinned"


async def test_a_redirect_to_an_internal_address_is_refused_before_connecting(
    canary: tuple[Canary, LiveServer], blog_server: LiveServer
) -> None:
    probe, server = canary
    async with OutboundClient(Guard(LOOPBACK, resolver=DNS)) as http:
        for target in ("http://169.254.169.254/", "http://intranet.test/", "http://[::1]/"):
            with pytest.raises(UrlNotAllowedError):
                await http.get(blog_server.url("/redirect?to=" + target))
        with pytest.raises(UrlNotAllowedError):
            await http.get(blog_server.url("/redirect-internal"))
        with pytest.raises(UrlNotAllowedError):  # loopback, but not the allowed address
            await http.get(blog_server.url(f"/redirect?to=http://127.0.0.2:{server.port}/"))
    assert probe.hits == []


async def test_redirect_chains_are_capped(canary: tuple[Canary, LiveServer]) -> None:
    probe, server = canary
    async with OutboundClient(Guard(LOOPBACK)) as http:
        with pytest.raises(spec.InvalidSourceError) as caught:
            await http.get(server.url("/loop"))
    assert caught.value.code == "too_many_redirects"
    assert len(probe.hits) == 6


async def test_redirects_are_not_followed_for_posts(canary: tuple[Canary, LiveServer]) -> None:
    probe, server = canary
    async with OutboundClient(Guard(LOOPBACK)) as http:
        response = await http.post(server.url("/loop"), data={"a": "b"})
    assert response.status_code == 302
    assert len(probe.hits) == 1


class Witness:
    """A loopback listener that records the credentials each request carried; `/hop?to=URL`
    answers 302 to URL."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None, str | None]] = []

    def app(self) -> Starlette:
        async def any_path(request: Request) -> Response:
            headers = request.headers
            self.seen.append(
                (request.url.path, headers.get("authorization"), headers.get("cookie"))
            )
            if request.url.path == "/hop":
                return RedirectResponse(request.query_params["to"], status_code=302)
            return JSONResponse({})

        return Starlette(routes=[Route("/{path:path}", any_path)])


@pytest.fixture
def witnesses() -> Iterator[tuple[Witness, LiveServer, Witness, LiveServer]]:
    first, second = Witness(), Witness()
    with LiveServer(first.app()) as one, LiveServer(second.app()) as two:
        yield first, one, second, two


CREDENTIALS = {"authorization": "Bearer ghu_member-token", "Cookie": "session=member"}


async def test_a_redirect_to_another_origin_drops_authorization_and_cookie(
    witnesses: tuple[Witness, LiveServer, Witness, LiveServer],
) -> None:
    first, one, second, two = witnesses
    elsewhere = two.url("/hop?to=" + two.url("/landed"))  # and a same-origin hop after it
    async with OutboundClient(Guard(LOOPBACK)) as http:
        response = await http.get(one.url("/hop?to=" + elsewhere), headers=CREDENTIALS)
    assert response.status_code == 200
    assert first.seen == [("/hop", "Bearer ghu_member-token", "session=member")]
    assert second.seen == [("/hop", None, None), ("/landed", None, None)]


async def test_a_redirect_to_another_host_on_the_same_address_and_port_drops_them_too(
    witnesses: tuple[Witness, LiveServer, Witness, LiveServer],
) -> None:
    first, one, _second, _two = witnesses
    renamed = f"http://blog.test:{one.port}/landed"  # blog.test resolves to 127.0.0.1
    async with OutboundClient(Guard(LOOPBACK, resolver=DNS)) as http:
        await http.get(one.url("/hop?to=" + renamed), headers=CREDENTIALS)
    assert first.seen == [
        ("/hop", "Bearer ghu_member-token", "session=member"),
        ("/landed", None, None),
    ]


async def test_a_same_origin_redirect_keeps_the_credentials(
    witnesses: tuple[Witness, LiveServer, Witness, LiveServer],
) -> None:
    first, one, second, _two = witnesses
    async with OutboundClient(Guard(LOOPBACK)) as http:
        await http.get(one.url("/hop?to=/landed"), headers=CREDENTIALS)
    assert first.seen == [
        ("/hop", "Bearer ghu_member-token", "session=member"),
        ("/landed", "Bearer ghu_member-token", "session=member"),
    ]
    assert second.seen == []


async def test_a_response_over_the_size_cap_is_cut_off(blog: Blog, blog_server: LiveServer) -> None:
    blog.add_post("x" * 5000)
    async with OutboundClient(Guard(LOOPBACK), Limits(max_bytes=1024)) as http:
        with pytest.raises(spec.InvalidSourceError) as declared:
            await http.get(blog_server.url("/rss.xml"))  # Content-Length says too much
        with pytest.raises(spec.InvalidSourceError) as streamed:
            await http.get(blog_server.url("/huge.xml"))  # no length: counted while reading
    assert declared.value.code == streamed.value.code == "source_too_large"


async def test_slow_upstreams_hit_the_read_and_total_time_limits(
    blog: Blog, blog_server: LiveServer
) -> None:
    blog.delay = 2.0
    async with OutboundClient(Guard(LOOPBACK), Limits(read=0.2, total=5.0)) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get(blog_server.url("/slow.xml"))
    async with OutboundClient(Guard(LOOPBACK), Limits(read=5.0, total=0.3)) as http:
        with pytest.raises(httpx.TimeoutException):
            await http.get(blog_server.url("/slow.xml"))
