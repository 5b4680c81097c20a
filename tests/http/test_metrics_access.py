"""/metrics is served only to a local, unforwarded request, or to the configured bearer token
(COOP_METRICS_TOKEN): a spoofed X-Forwarded-For or a proxy on the same machine gets nothing."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from coop.config import Settings
from coop.errors import ConfigError
from coop.http.health import FORWARDING_HEADERS
from tests.http.served import served

# Fixed (a test value): a random one would make the test ids differ between xdist workers.
TOKEN = "Q0i80aNEYMxxyALqapI4otTfwAqUohroqE_2ix8fkxw"
LOOPBACK_PEERS = ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"]
REMOTE_PEERS = ["192.0.2.2", "10.0.0.1", "::ffff:10.0.0.1", "fd00::2", "0.0.0.0", "testclient"]
SPOOFS = [
    {"X-Forwarded-For": "127.0.0.1"},
    {"X-Forwarded-For": "::1, 127.0.0.1"},
    {"X-Real-IP": "127.0.0.1"},
    {"Forwarded": "for=127.0.0.1"},
    {"Host": "127.0.0.1"},
]


def _client(app: Any, peer: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000")


@pytest.fixture
async def token_app(settings: Settings, db: str) -> AsyncIterator[Any]:
    from coop.app import build_app

    yield build_app(dataclasses.replace(settings, metrics_token=TOKEN), manage_db=False)


def _is_metrics(response: httpx.Response) -> bool:
    return response.status_code == 200 and "coop_http_requests_total" in response.text


@pytest.mark.parametrize("peer", LOOPBACK_PEERS)
async def test_a_local_request_reads_the_metrics(app: Any, peer: str) -> None:
    async with _client(app, peer) as client:
        await client.get("/healthz")
        assert _is_metrics(await client.get("/metrics"))


@pytest.mark.parametrize("spoof", [{}, *SPOOFS])
@pytest.mark.parametrize("peer", REMOTE_PEERS)
async def test_a_remote_request_gets_404_however_it_claims_to_be_local(
    app: Any, peer: str, spoof: dict[str, str]
) -> None:
    async with _client(app, peer) as client:
        response = await client.get("/metrics", headers=spoof)
    assert response.status_code == 404
    assert "coop_" not in response.text


@pytest.mark.parametrize("header", FORWARDING_HEADERS)
async def test_a_request_forwarded_by_a_local_proxy_gets_404(app: Any, header: str) -> None:
    async with _client(app, "127.0.0.1") as client:
        response = await client.get("/metrics", headers={header: "203.0.113.9"})
    assert response.status_code == 404


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        f"Bearer {TOKEN[:-1]}",
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}{'A' if TOKEN[-1] != 'A' else 'B'}",
        f"Basic {TOKEN}",
        TOKEN,
    ],
)
@pytest.mark.parametrize("peer", ["127.0.0.1", "192.0.2.2"])
async def test_with_a_token_configured_everyone_needs_it(
    token_app: Any, peer: str, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    async with _client(token_app, peer) as client:
        response = await client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "metrics_token_required"
    assert response.headers["www-authenticate"] == 'Bearer realm="coop-metrics"'


@pytest.mark.parametrize("scheme", ["Bearer", "bearer"])
@pytest.mark.parametrize("peer", ["127.0.0.1", "192.0.2.2"])
async def test_the_right_token_reads_the_metrics_from_anywhere(
    token_app: Any, peer: str, scheme: str
) -> None:
    async with _client(token_app, peer) as client:
        await client.get("/healthz")
        response = await client.get("/metrics", headers={"Authorization": f"{scheme} {TOKEN}"})
    assert _is_metrics(response)


@pytest.mark.parametrize("value", ["short", "x" * 31, "é" * 40, "tab\t" + "x" * 40])
def test_a_weak_metrics_token_is_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError, match="COOP_METRICS_TOKEN"):
        Settings.from_env({"COOP_METRICS_TOKEN": value})


def test_a_blank_metrics_token_means_none() -> None:
    assert Settings.from_env({"COOP_METRICS_TOKEN": "  "}).metrics_token is None


def test_the_token_never_shows_in_the_settings_repr() -> None:
    settings = Settings.from_env({"COOP_METRICS_TOKEN": TOKEN})
    assert settings.metrics_token == TOKEN and TOKEN not in repr(settings)


# --- the real server, reached over real sockets ---------------------------------------------


def _outward_address() -> str | None:
    """This machine's non-loopback IPv4 address, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent for a UDP connect
        except OSError:
            return None
        address: str = probe.getsockname()[0]
    return None if address.startswith("127.") else address


def test_the_real_server_serves_metrics_on_loopback_only(tmp_path: Path) -> None:
    outward = _outward_address()
    if outward is None:
        pytest.skip("this machine has no non-loopback IPv4 address to connect from")
    with served(tmp_path, host="0.0.0.0") as server:
        assert _is_metrics(httpx.get(server.url("/metrics")))
        remote = httpx.get(server.url("/metrics", host=outward))
        spoofed = httpx.get(
            server.url("/metrics", host=outward),
            headers={"X-Forwarded-For": "127.0.0.1", "X-Real-IP": "127.0.0.1"},
        )
        proxied = httpx.get(server.url("/metrics"), headers={"X-Forwarded-For": "203.0.113.9"})
    assert (remote.status_code, spoofed.status_code, proxied.status_code) == (404, 404, 404)
