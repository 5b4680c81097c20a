"""Migrations match the models: nothing is pending, and a database built by `coop migrate`
has exactly the schema `generate_schemas()` builds (tables, columns, nullability, unique
constraints, indexes, foreign keys), on SQLite and on PostgreSQL.

Model changes come with a migration: `coop makemigrations --name what_changed`.
"""

from __future__ import annotations

import importlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from tortoise.context import TortoiseContext
from tortoise.models import Model

from coop.config import Settings
from coop.db import MODEL_MODULES, pending_model_changes, tortoise_config
from tests.conftest import ENGINES, _pg_url, create_pg_database, drop_pg_database

MIGRATION_BOOKKEEPING = {"tortoise_migrations"}
# `coop migrate` also creates the job queue's tables on PostgreSQL (procrastinate's own schema,
# not coop's models): they are checked for presence, not compared.
JOB_QUEUE_PREFIX = "procrastinate_"


def bookkeeping(table: str) -> bool:
    return table in MIGRATION_BOOKKEEPING or table.startswith(JOB_QUEUE_PREFIX)


# One comparable row per schema fact; names of indexes and constraints are left out because
# the two builders name them differently.
Schema = set[tuple[Any, ...]]


def test_no_model_docstring_has_a_semicolon() -> None:
    """Tortoise turns the docstring into a table comment, and a `;` breaks SQLite migrations."""
    offenders = [
        f"{module}.{name}"
        for module in MODEL_MODULES
        for name, obj in vars(importlib.import_module(module)).items()
        if isinstance(obj, type)
        and issubclass(obj, Model)
        and obj.__module__ == module
        and ";" in (obj.__doc__ or "")
    ]
    assert offenders == [], f"remove the `;` from these model docstrings: {offenders}"


async def test_models_have_no_changes_without_a_migration() -> None:
    pending = await pending_model_changes(Settings())
    assert pending == [], (
        f"models changed without a migration (would create {pending}); "
        "run `coop makemigrations --name <what_changed>` and commit the file"
    )


@pytest.fixture(params=ENGINES)
async def two_databases(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, str]]:
    """Two fresh, empty databases of one engine: (for `coop migrate`, for generate_schemas)."""
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'migrated.sqlite3'}", f"sqlite://{tmp_path / 'gen.sqlite3'}"
        return
    names = [await create_pg_database(), await create_pg_database()]
    try:
        yield _pg_url(names[0]), _pg_url(names[1])
    finally:
        for name in names:
            await drop_pg_database(name)


def coop_migrate(url: str, data_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COOP_")}
    env.update(COOP_DATABASE_URL=url, COOP_DATA_DIR=str(data_dir))
    done = subprocess.run(
        [sys.executable, "-m", "coop", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


async def generate_schema(url: str) -> None:
    # An isolated context: the session's global tortoise context stays untouched.
    async with TortoiseContext() as ctx:
        await ctx.init(config=tortoise_config(Settings(), url=url))
        await ctx.generate_schemas(safe=False)


def sqlite_schema(url: str) -> Schema:
    path = url.removeprefix("sqlite://").split("?", 1)[0]
    db = sqlite3.connect(path)
    try:
        schema: Schema = set()
        tables = [
            name
            for (name,) in db.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
            )
            if name not in MIGRATION_BOOKKEEPING
        ]
        for table in tables:
            schema.add(("table", table))
            for _, name, kind, notnull, _, pk in db.execute(f'PRAGMA table_info("{table}")'):
                schema.add(("column", table, name, kind.upper(), bool(notnull or pk), bool(pk)))
            for _, index, unique, _, _ in db.execute(f'PRAGMA index_list("{table}")'):
                columns = tuple(r[2] for r in db.execute(f'PRAGMA index_info("{index}")'))
                schema.add(("index", table, columns, bool(unique)))
            for row in db.execute(f'PRAGMA foreign_key_list("{table}")'):
                schema.add(("foreign_key", table, row[3], row[2], row[4], row[6]))
        return schema
    finally:
        db.close()


PG_COLUMNS = """
SELECT table_name, column_name, data_type, character_maximum_length, is_nullable
FROM information_schema.columns WHERE table_schema = 'public'
"""
PG_INDEXES = """
SELECT t.relname, array_agg(a.attname ORDER BY k.ord), ix.indisunique, ix.indisprimary
FROM pg_index ix
JOIN pg_class t ON t.oid = ix.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = 'public'
CROSS JOIN LATERAL unnest(ix.indkey) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
GROUP BY ix.indexrelid, t.relname, ix.indisunique, ix.indisprimary
"""
PG_FOREIGN_KEYS = """
SELECT cl.relname, a.attname, ref.relname, ra.attname, c.confdeltype
FROM pg_constraint c
JOIN pg_class cl ON cl.oid = c.conrelid
JOIN pg_class ref ON ref.oid = c.confrelid
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
JOIN pg_attribute ra ON ra.attrelid = c.confrelid AND ra.attnum = c.confkey[1]
WHERE c.contype = 'f'
"""


async def pg_schema(url: str) -> Schema:
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        schema: Schema = set()
        for table, column, kind, length, nullable in await conn.fetch(PG_COLUMNS):
            if bookkeeping(table):
                continue
            schema.add(("table", table))
            schema.add(("column", table, column, kind, length, nullable == "NO"))
        for table, columns, unique, primary in await conn.fetch(PG_INDEXES):
            if not bookkeeping(table):
                schema.add(("index", table, tuple(columns), unique, primary))
        for row in await conn.fetch(PG_FOREIGN_KEYS):
            if not bookkeeping(row[0]):
                schema.add(("foreign_key", *row))
        return schema
    finally:
        await conn.close()


async def schema_of(url: str) -> Schema:
    return sqlite_schema(url) if url.startswith("sqlite") else await pg_schema(url)


async def test_migrated_database_has_the_schema_of_the_models(
    two_databases: tuple[str, str], tmp_path: Path
) -> None:
    migrated_url, generated_url = two_databases
    coop_migrate(migrated_url, tmp_path / "var")
    coop_migrate(migrated_url, tmp_path / "var")  # a second run finds nothing to do
    await generate_schema(generated_url)

    migrated, generated = await schema_of(migrated_url), await schema_of(generated_url)

    assert any(fact[0] == "table" for fact in generated)
    assert sorted(generated - migrated, key=repr) == [], "missing after `coop migrate`"
    assert sorted(migrated - generated, key=repr) == [], "extra after `coop migrate`"
    if migrated_url.startswith("postgres"):  # and the job queue's tables, once
        conn = await asyncpg.connect(migrated_url.replace("postgres://", "postgresql://", 1))
        try:
            assert await conn.fetchval("SELECT to_regclass('procrastinate_jobs') IS NOT NULL")
        finally:
            await conn.close()


def test_schema_comparison_sees_a_dropped_unique_constraint(tmp_path: Path) -> None:
    """The checker itself can fail: the SQLite AlterField bug drops unique constraints."""
    for name, unique in (("a", "UNIQUE"), ("b", "")):
        db = sqlite3.connect(tmp_path / f"{name}.sqlite3")
        db.execute(f"CREATE TABLE t (id INTEGER PRIMARY KEY, token VARCHAR(64) NOT NULL {unique})")
        db.close()
    a = sqlite_schema(f"sqlite://{tmp_path / 'a.sqlite3'}")
    b = sqlite_schema(f"sqlite://{tmp_path / 'b.sqlite3'}")
    assert a - b == {("index", "t", ("token",), True)}


def test_the_migrations_form_one_line() -> None:
    """Every migration but the first depends on exactly one other, and exactly one is a leaf:
    two engineers who each add a migration on the same parent must put one after the other
    (rebase, then regenerate), or `coop makemigrations` cannot tell which is newest."""
    folder = Path(importlib.import_module("coop.migrations").__file__ or "").parent
    names = {p.stem for p in folder.glob("[0-9][0-9][0-9][0-9]_*.py")}
    parents: dict[str, list[str]] = {}
    for name in names:
        module = importlib.import_module(f"coop.migrations.{name}")
        parents[name] = [dep for _, dep in module.Migration.dependencies]
    assert [n for n, deps in parents.items() if not deps] == ["0001_initial"]
    assert all(len(deps) <= 1 and set(deps) <= names for deps in parents.values()), parents
    depended_on = {dep for deps in parents.values() for dep in deps}
    leaves = sorted(names - depended_on)
    assert len(leaves) == 1, f"more than one newest migration: {leaves}"


_MIGRATE_TO = """
import asyncio, sys
from tortoise import Tortoise, connections
from tortoise.migrations.api.migrate import migrate
from coop.config import Settings
from coop.db import tortoise_config

async def main(url, target, sql):
    config = tortoise_config(Settings(), url=url)
    try:
        await migrate(config=config, target=target)
        if sql:
            print(await connections.get("default").execute_query_dict(sql))
    finally:
        await Tortoise.close_connections()

asyncio.run(main(*sys.argv[1:4]))
"""


def _migrate_to(url: str, target: str, sql: str = "") -> str:
    done = subprocess.run(
        [sys.executable, "-c", _MIGRATE_TO, url, target, sql],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("COOP_")},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_the_last_weeks_run_counts_move_to_the_per_session_table(
    two_databases: tuple[str, str],
) -> None:
    """0013 replaces `scorer_runs` (one row per scorer, hour and kind, updated by every
    worker) with `scorer_run_counts` (rows per database session): the counts come along."""
    url, _ = two_databases
    insert = (
        "INSERT INTO scorer_runs (id, scorer, hour, kind, runs, failures, last_failure, "
        "last_failure_version) VALUES ('7d0f4c1e-7c39-4bf8-9c55-1d5f7ab9b0d1', 'reach', "
        "'2026-12-01 10:00:00+00:00', '', 7, 2, 'plugin_error', '1.0')"
    )
    _migrate_to(url, "models.0012_governance_statistics", insert)
    moved = _migrate_to(
        url,
        "models",
        "SELECT scorer, kind, shard, runs, failures, last_failure FROM scorer_run_counts",
    )
    assert "'scorer': 'reach', 'kind': '', 'shard': 0, 'runs': 7, 'failures': 2" in moved
    assert "'last_failure': 'plugin_error'" in moved
