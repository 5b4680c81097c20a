"""Database infrastructure: the tortoise configuration, migrations and schema checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from tortoise import Tortoise
from tortoise.migrations.api import migrate as tortoise_migrate

from coop.config import Settings

APP_LABEL = "models"

# Every module holding tortoise models. Order does not matter; the migration autodetector
# compares the union with coop/migrations.
MODEL_MODULES = [
    "coop.vault.models",
    "coop.members.models",
    "coop.apps.models",
    "coop.consent.models",
    "coop.connectors.models",
    "coop.connectors.oauth_models",
    "coop.portability.models",
    "coop.scoring.models",
]

# SQLite: WAL (tortoise's default) lets readers run beside the writer, busy_timeout turns
# cross-process lock contention into a short wait instead of "database is locked",
# secure_delete overwrites freed pages so erased ciphertext does not linger in the file, and
# synchronous=FULL makes every commit reach the disk before it returns: an access-log entry
# (answered reads), a revocation or a destroyed key must survive a power loss, which
# NORMAL (WAL's usual pairing) does not promise.
SQLITE_PRAGMAS = {
    "journal_mode": "WAL",
    "busy_timeout": "10000",
    "secure_delete": "ON",
    "synchronous": "FULL",
    "foreign_keys": "ON",
}


def normalise_url(url: str) -> str:
    """Return a tortoise URL, adding coop's SQLite pragmas and accepting `postgresql://`."""
    if url.startswith("postgresql://"):
        url = "postgres://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite://") and url != "sqlite://:memory:":
        parts = urlsplit(url)
        given = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
        pragmas = {**SQLITE_PRAGMAS, **given}
        path = url.split("?", 1)[0]
        url = f"{path}?{urlencode(pragmas)}"
    return url


def tortoise_config(settings: Settings, *, url: str | None = None) -> dict[str, Any]:
    """The one tortoise configuration used by the server, the CLI and the tests."""
    db_url = normalise_url(url or settings.database_url)
    return {
        "connections": {"default": db_url},
        "apps": {
            APP_LABEL: {
                "models": MODEL_MODULES,
                "default_connection": "default",
                "migrations": "coop.migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def sqlite_path(settings: Settings) -> Path | None:
    """The SQLite database file of `settings` (None for PostgreSQL or an in-memory one)."""
    if not settings.is_sqlite:
        return None
    path = settings.database_url.removeprefix("sqlite://").split("?", 1)[0]
    return None if path == ":memory:" else Path(path)


def ensure_data_dir(settings: Settings) -> None:
    """Create the data directory (mode 0700: it holds keys and the SQLite file)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    db_path = sqlite_path(settings)
    if db_path is not None:
        db_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)


async def migrate(settings: Settings) -> None:
    """Apply every pending migration (used by `coop migrate` and at server start)."""
    ensure_data_dir(settings)
    try:
        await tortoise_migrate(config=tortoise_config(settings))
    finally:
        await Tortoise.close_connections()


def db_kind() -> str:
    """'sqlite' or 'postgres' for the active default connection."""
    from tortoise import connections

    dialect = connections.get("default").capabilities.dialect
    return "postgres" if dialect == "postgres" else dialect


async def _migration_writers(settings: Settings) -> list[Any]:
    from tortoise.context import TortoiseContext
    from tortoise.migrations.autodetector import MigrationAutodetector

    config = tortoise_config(settings, url="sqlite://:memory:")
    async with TortoiseContext() as ctx:
        await ctx.init(config=config)
        assert ctx.apps is not None
        writers: list[Any] = await MigrationAutodetector(ctx.apps, config["apps"]).changes()
    return writers


async def pending_model_changes(settings: Settings) -> list[str]:
    """Names of the migrations the models need but coop/migrations lacks (empty = in sync)."""
    return [writer.name for writer in await _migration_writers(settings)]


async def make_migrations(settings: Settings, name: str | None = None) -> list[Path]:
    """Write migration files for model changes (a developer command: `coop makemigrations`)."""
    from tortoise.migrations.writer import format_migration_name

    paths = []
    for writer in await _migration_writers(settings):
        if name:
            writer.name = format_migration_name(int(writer.name.split("_", 1)[0]), name)
        paths.append(Path(writer.write()))
    return paths
