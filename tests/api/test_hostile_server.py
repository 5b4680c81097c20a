"""A real `coop serve` on loopback stays live while hostile documents are checked (issue 12
part 3): /healthz keeps answering while each one is in flight. Ordering, not timing, is
asserted: health answers are counted between a hostile request's send and its answer."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx
import pytest

from tests.api.test_hostile_documents import alias_bomb, chain, depth_chain, diamond
from tests.e2e.conftest import (
    STARTUP_SECONDS,
    _server_env,
    _start_server,
    _stop_server,
    wait_healthy,
)
from tests.fakes.server import free_port

# `served` starts three Python processes (migrate, a token, serve), each bounded by
# STARTUP_SECONDS: slow on a loaded machine, and counted in the test's own bound.
pytestmark = pytest.mark.timeout(3 * STARTUP_SECONDS + 120)

TOKEN_SCRIPT = """
import asyncio
from tortoise import Tortoise
from coop.config import Settings
from coop.consent import personal
from coop.db import tortoise_config
from coop.members import service as members
from coop.vault import Vault, load_keyring, load_secret_key

async def main() -> None:
    settings = Settings.from_env()
    await Tortoise.init(config=tortoise_config(settings))
    vault = Vault(load_keyring(settings), load_secret_key(settings))
    member = await members.create_member(
        vault=vault, email="hostile@example.org", password="correct horse battery staple"
    )
    made = await personal.create_personal_token(
        member_id=member.id, name="t", scopes=["profile"], lifetime="30d"
    )
    print(made.token)
    await Tortoise.close_connections()

asyncio.run(main())
"""


def costly_document(i: int) -> str:
    """Within the sibling caps, and among the costliest documents to validate (graphql-core
    compares same-named siblings and their fragments pairwise): checked until the budget."""
    spreads = " ".join(f"...G{j}" for j in range(25))
    fields = " ".join(f"viewer {{ {spreads} }}" for _ in range(10))
    frags = " ".join(f"fragment G{j} on Viewer {{ id handle sharingPaused }}" for j in range(25))
    return f"query Q{i} {{ {fields} }} {frags}"


async def _run(*args: str, env: dict[str, str]) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable, *args, env=env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=STARTUP_SECONDS)
    assert process.returncode == 0
    return out.decode()


@pytest.fixture
async def served(tmp_path: Path) -> tuple[str, str, int]:  # type: ignore[misc]
    """A real `coop serve` on a fresh SQLite file: (base URL, a personal token, its pid)."""
    port = free_port()
    env = _server_env(tmp_path, f"sqlite://{tmp_path / 'coop.sqlite3'}", port)
    await _run("-m", "coop", "migrate", env=env)
    token = (await _run("-c", TOKEN_SCRIPT, env=env)).strip().splitlines()[-1]
    process = await asyncio.to_thread(_start_server, env, port, tmp_path / "server.log")
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_healthy(process, base, tmp_path / "server.log")
        yield base, token, process.pid
    finally:
        await asyncio.to_thread(_stop_server, process)


HOSTILE = [
    *(costly_document(i) for i in range(6)),
    chain(30),
    diamond(30),
    alias_bomb(30),
    depth_chain(30),
]


async def test_health_answers_while_hostile_documents_are_in_flight(
    served: tuple[str, str, int],
) -> None:
    base, token, _ = served
    answered = 0
    done = asyncio.Event()

    async def poll_health(client: httpx.AsyncClient) -> None:
        nonlocal answered
        while not done.is_set():
            response = await client.get(base + "/healthz")
            assert response.status_code == 200
            answered += 1

    async def send(client: httpx.AsyncClient, query: str) -> tuple[int, int]:
        before = answered
        response = await client.post(
            base + "/graphql", json={"query": query}, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code in (200, 400), response.text
        return before, answered

    timeout = httpx.Timeout(60.0)
    async with (
        httpx.AsyncClient(timeout=timeout) as health,
        httpx.AsyncClient(timeout=timeout) as api,
    ):
        poller = asyncio.create_task(poll_health(health))
        await asyncio.sleep(0)
        spans = [await send(api, query) for query in HOSTILE]
        done.set()
        await poller
    slow_spans = spans[:6]
    # Each slow document is validated off the event loop: health answers keep arriving
    # meanwhile (on the loop, at most the one request already queued could slip through).
    assert all(after - before >= 3 for before, after in slow_spans), spans
    assert answered >= len(HOSTILE)
