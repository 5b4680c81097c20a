"""Shared fixtures: every database test runs on SQLite and on PostgreSQL.

`COOP_TEST_ENGINES` (default `sqlite,postgres`) picks the engines; `COOP_TEST_POSTGRES_URL`
(default `postgres://postgres@127.0.0.1:5432/test`) is the server used to create a throw-away
database per test session. A PostgreSQL that is down fails the run: it never skips silently.
"""

from __future__ import annotations

import base64
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import hypothesis
import pytest
from tortoise import Tortoise, connections
from tortoise.backends.base.executor import EXECUTOR_CACHE

from coop.config import Settings
from coop.consent.ratelimit import TABLE as RATE_LIMIT_TABLE
from coop.db import MODEL_MODULES, tortoise_config
from coop.types import Clock, clock
from coop.vault import Vault, load_keyring, load_secret_key

# Hypothesis keeps failing examples in .hypothesis/ between local runs (replayed first); CI
# (CI=true) runs derandomised, so a green main stays green and a red one is reproducible.
hypothesis.settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
hypothesis.settings.register_profile("dev")
_DEFAULT_PROFILE = "ci" if os.environ.get("CI") else "dev"
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", _DEFAULT_PROFILE))

E2E_DIR = Path(__file__).parent / "e2e"

ENGINES = [e.strip() for e in os.environ.get("COOP_TEST_ENGINES", "sqlite,postgres").split(",")]
PG_ADMIN_URL = os.environ.get("COOP_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")


def _pg_url(dbname: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{dbname}"


async def create_pg_database() -> str:
    name = f"coop_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(PG_ADMIN_URL.replace("postgres://", "postgresql://", 1))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def drop_pg_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL.replace("postgres://", "postgresql://", 1))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    engine: str = request.param
    return engine


@pytest.fixture(scope="session")
async def database_url(engine: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A fresh, empty database for this session and engine, with coop's schema."""
    if engine == "sqlite":
        url = f"sqlite://{tmp_path_factory.mktemp('db') / 'coop.sqlite3'}"
        pg_name = None
    else:
        pg_name = await create_pg_database()
        url = _pg_url(pg_name)
    config = tortoise_config(Settings(), url=url)
    # Tortoise caches INSERT statements per connection *name* ("default"), so statements built
    # for the previous engine (SQLite `?` placeholders) would be reused on PostgreSQL.
    EXECUTOR_CACHE.clear()
    await Tortoise.init(config=config)
    await Tortoise.generate_schemas(safe=False)
    try:
        yield url
    finally:
        await Tortoise.close_connections()
        if pg_name:
            await drop_pg_database(pg_name)


async def truncate_all() -> None:
    """Empty every model table, and on PostgreSQL the shared rate-limit buckets, which live
    outside the models (an unlogged table created on first use): left over, one test's requests
    would count against the next test's budget."""
    conn = connections.get("default")
    tables = [m._meta.db_table for m in Tortoise.apps["models"].values()]  # type: ignore[index]
    if conn.capabilities.dialect == "postgres":
        quoted = ", ".join(f'"{t}"' for t in tables)
        await conn.execute_script(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE")
        found = await conn.execute_query_dict("SELECT to_regclass($1) AS t", [RATE_LIMIT_TABLE])
        if found[0]["t"] is not None:
            await conn.execute_script(f'TRUNCATE "{RATE_LIMIT_TABLE}"')
    else:
        await conn.execute_script("PRAGMA foreign_keys=OFF")
        for table in tables:
            await conn.execute_script(f'DELETE FROM "{table}"')  # noqa: S608 (model tables)
        await conn.execute_script("PRAGMA foreign_keys=ON")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[str]:
    """An empty database (every table truncated after the test) and a reset clock."""
    clock.reset()
    try:
        yield database_url
    finally:
        clock.reset()
        await truncate_all()


@pytest.fixture
def frozen_clock() -> Iterator[Clock]:
    """coop's clock stopped at the present instant, so that a test can compare two readings
    exactly however slowly a loaded machine runs it; `clock.advance` moves it."""
    clock.freeze()
    try:
        yield clock
    finally:
        clock.reset()


def make_master_key() -> str:
    return "test-kek-1:" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


@pytest.fixture
def settings(tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """Settings for an in-process app: keys in env form, data under a temporary folder."""
    url = request.getfixturevalue("database_url") if "db" in request.fixturenames else ""
    return Settings(
        data_dir=tmp_path / "var",
        database_url=url,
        master_key=make_master_key(),
        secret_key=secrets.token_urlsafe(48),
        issuer="http://127.0.0.1:8000",
        outbound_allow=(),
    )


@pytest.fixture
def vault(settings: Settings) -> Vault:
    return Vault(load_keyring(settings), load_secret_key(settings))


@pytest.fixture
async def app(settings: Settings, db: str) -> AsyncIterator[Any]:
    """The composed app (tortoise already initialised; no lifespan runs). A page that needed
    the scorers' metadata (the consent page) started the sandbox: close it afterwards."""
    from coop.app import build_app
    from coop.jobs import scoring as scoring_jobs

    built = build_app(settings, manage_db=False)
    yield built
    await built.state.runtime.jobs.queue.drain()  # scoring queued by Enable, …
    await scoring_jobs.close(built.state.runtime)


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client speaking to the in-process app (cookies kept, redirects not followed)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
        yield c


@pytest.fixture
def anyio_backend() -> Iterator[str]:
    yield "asyncio"


__all__ = ["MODEL_MODULES", "create_pg_database", "drop_pg_database", "truncate_all"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every browser test `e2e` (a `pytestmark` in a conftest marks nothing), so
    `-m e2e` selects them and `-m "not e2e"` leaves them out."""
    for item in items:
        if E2E_DIR in Path(item.path).parents:
            item.add_marker(pytest.mark.e2e)
