"""Fixtures for tests that run real coop processes on a PostgreSQL cluster of their own.

One cluster per module (initdb takes a few seconds): tests in a module share it and leave it
running. Skipped when COOP_TEST_ENGINES leaves PostgreSQL out.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from tortoise.backends.base.executor import EXECUTOR_CACHE
from tortoise.context import TortoiseContext

from coop.config import Settings
from coop.consent import personal
from coop.db import tortoise_config
from coop.members import service as members
from coop.members import sessions
from coop.vault import Vault, load_keyring, load_secret_key
from tests.cluster.pg import PgCluster
from tests.cluster.processes import coop, coop_env
from tests.conftest import ENGINES

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    if "postgres" not in ENGINES:
        pytest.skip("PostgreSQL is not among COOP_TEST_ENGINES")
    made = PgCluster()
    try:
        made.start()
        yield made
    finally:
        made.destroy()


@dataclass
class Seeded:
    """A member with a web session and a personal token (`profile`), made in the database
    the processes share."""

    member_id: uuid.UUID
    email: str
    session_token: str
    personal_token: str


def migrated_env(
    cluster: PgCluster, folder: Path, *, via_port: int | None = None, **extra: str
) -> dict[str, str]:
    """A fresh database on `cluster`, migrated by `coop migrate`, and the environment for
    processes using it (through the port `via_port`, e.g. a proxy, when given)."""
    name = f"coop_{secrets.token_hex(4)}"
    cluster.create_database(name)
    direct = cluster.url(name)
    done = coop(coop_env(folder, direct), "migrate")
    assert done.returncode == 0, done.stderr
    env = coop_env(folder, cluster.url(name, port=via_port), **extra)
    env["COOP_TEST_DIRECT_URL"] = direct
    return env


def env_settings(env: dict[str, str]) -> Settings:
    return Settings.from_env({**env, "COOP_DATABASE_URL": env["COOP_TEST_DIRECT_URL"]})


@asynccontextmanager
async def env_db(env: dict[str, str]) -> AsyncIterator[None]:
    """Tortoise on the processes' database, in this test process. Tortoise caches INSERT
    statements per connection *name*: the session database's (perhaps SQLite `?`) must not
    be used here, nor this one's kept for the session's other tests."""
    saved = dict(EXECUTOR_CACHE)
    EXECUTOR_CACHE.clear()
    try:
        async with TortoiseContext() as ctx:
            await ctx.init(config=tortoise_config(env_settings(env)))
            yield
    finally:
        EXECUTOR_CACHE.clear()
        EXECUTOR_CACHE.update(saved)


async def seed_member(env: dict[str, str]) -> Seeded:
    settings = env_settings(env)
    vault = Vault(load_keyring(settings), load_secret_key(settings))
    email = f"m-{secrets.token_hex(5)}@example.org"
    async with env_db(env):
        member = await members.create_member(vault=vault, email=email, password=PASSWORD)
        _, session = await sessions.start(
            vault=vault, settings=settings, member=member, user_agent="test"
        )
        created = await personal.create_personal_token(
            member_id=member.id, name="t", scopes=["profile"], lifetime="30d"
        )
    return Seeded(member.id, email, session, created.token)


async def seed_feed_connection(env: dict[str, str], member: Seeded, url: str) -> uuid.UUID:
    """A feed connection of `member`, due for its first sync now."""
    from coop.connectors import service
    from coop.connectors.models import Connection
    from coop.connectors.registry import Registry
    from coop.types import utcnow

    settings = env_settings(env)
    vault = Vault(load_keyring(settings), load_secret_key(settings))
    registry = Registry.load(settings.connector_env(), allowed=settings.plugins)
    async with env_db(env):
        view = await service.create_connection(
            vault=vault,
            registry=registry,
            member_id=member.member_id,
            connector="feed",
            config={"url": url},
        )
        await Connection.filter(id=view.id).update(next_sync_at=utcnow())
    return view.id
