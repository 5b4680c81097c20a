"""No trace left (ER-04, CR-06): after an erasure the member's plaintext markers are in no
table, no SQLite page and no WAL frame, and no pg_dump of the database."""

from __future__ import annotations

import shutil
import subprocess

from tortoise import Tortoise, connections

from coop.config import Settings
from coop.db import db_kind
from coop.portability import erase
from coop.vault import Vault
from tests.conftest import PG_ADMIN_URL
from tests.portability.factories import make_app, make_person
from tests.sqlite_files import sqlite_bytes


async def postgres_hits(marker: str) -> dict[str, int]:
    conn = connections.get("default")
    hits = {}
    for model in Tortoise.apps["models"].values():
        table = model._meta.db_table
        _, rows = await conn.execute_query(
            f'SELECT count(*) AS n FROM "{table}" t WHERE t::text LIKE $1',  # noqa: S608
            [f"%{marker}%"],
        )
        if rows[0]["n"]:
            hits[table] = rows[0]["n"]
    return hits


def pg_dump_text(database_url: str) -> str:
    name = database_url.rsplit("/", 1)[1]
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgres://", "postgresql://", 1)
    result = subprocess.run(
        [shutil.which("pg_dump") or "pg_dump", "--data-only", f"{base}/{name}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout


async def test_no_plaintext_marker_survives_an_erasure(
    db: str, vault: Vault, settings: Settings
) -> None:
    app_id, _ = await make_app(vault, "Alpha")
    person = await make_person(vault, settings, app_ids=[app_id])
    other = await make_person(vault, settings, app_ids=[app_id])
    marker = person.canary.encode()
    # Sanity: the markers really are in the database in clear before (access log resource,
    # personal token name), so a scan that finds nothing afterwards means something.
    if db_kind() == "sqlite":
        await connections.get("default").execute_query("PRAGMA wal_checkpoint(TRUNCATE)")
        assert marker in sqlite_bytes(db)
    else:
        assert await postgres_hits(person.canary)

    await erase.erase_member(vault=vault, settings=settings, member_id=person.member_id)

    if db_kind() == "sqlite":
        _, rows = await connections.get("default").execute_query("PRAGMA secure_delete")
        assert next(iter(dict(rows[0]).values())) == 1
        assert marker not in sqlite_bytes(db)
        assert other.canary.encode() in sqlite_bytes(db)
    else:
        assert await postgres_hits(person.canary) == {}
        dump = pg_dump_text(db)
        assert person.canary not in dump and other.canary in dump


async def key_table_bytes() -> bytes:
    """Every byte of the key table as stored: SQLite file + WAL, or PostgreSQL's raw heap
    pages (dead tuples included, read with pageinspect)."""
    conn = connections.get("default")
    if db_kind() == "sqlite":
        return b""
    await conn.execute_script("CREATE EXTENSION IF NOT EXISTS pageinspect")
    _, rows = await conn.execute_query(
        "SELECT pg_relation_size('vault_member_key') / current_setting('block_size')::int AS n"
    )
    pages = b""
    for page in range(int(rows[0]["n"])):
        _, raw = await conn.execute_query(
            "SELECT get_raw_page('vault_member_key', $1) AS p", [page]
        )
        pages += bytes(raw[0]["p"])
    return pages


async def test_the_destroyed_key_leaves_the_storage_not_just_the_table(
    db: str, vault: Vault, settings: Settings
) -> None:
    """CR-06: no copy of the wrapped key in SQLite's file/WAL or PostgreSQL's dead tuples."""
    from coop.vault.models import MemberKey

    people = [await make_person(vault, settings, records=1) for _ in range(3)]
    target = people[1]
    wrapped = bytes((await MemberKey.get(member_id=target.member_id)).wrapped)

    def stored() -> bytes:
        return sqlite_bytes(db) if db_kind() == "sqlite" else b""

    if db_kind() == "sqlite":
        await connections.get("default").execute_query("PRAGMA wal_checkpoint(TRUNCATE)")
    assert wrapped in stored() + await key_table_bytes()

    await erase.erase_member(vault=vault, settings=settings, member_id=target.member_id)

    assert wrapped not in stored() + await key_table_bytes()
    for other in (people[0], people[2]):
        assert await vault.cipher_for(other.member_id)
