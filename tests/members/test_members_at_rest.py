"""No plaintext email (or password, or session token) at rest after sign-up and login."""

from __future__ import annotations

import httpx
from tortoise import connections

from coop.db import db_kind
from coop.members.models import Member
from tests.sqlite_files import sqlite_bytes
from tests.web.journeys import Credentials, log_in, session_cookie, sign_up

CANARY = "canary-7f3a9c"
CREDS = Credentials(f"{CANARY}@plaintext-check.example", "secret passphrase 91d2e")


async def _postgres_hits(needle: str) -> list[str]:
    """Every text-like or bytea column of every table in the schema that contains `needle`."""
    conn = connections.get("default")
    columns = await conn.execute_query_dict(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND data_type IN "
        "('text', 'character varying', 'character', 'bytea', 'json', 'jsonb')"
    )
    assert columns
    hits = []
    for col in columns:
        table, column = col["table_name"], col["column_name"]
        if col["data_type"] == "bytea":
            condition = f"position(convert_to($1, 'UTF8') in \"{column}\") > 0"
        else:
            condition = f"\"{column}\"::text ILIKE '%' || $1 || '%'"
        query = f'SELECT count(*) AS n FROM "{table}" WHERE {condition}'  # noqa: S608
        rows = await conn.execute_query_dict(query, [needle])
        if rows[0]["n"]:
            hits.append(f"{table}.{column}")
    return hits


async def test_no_email_password_or_token_in_the_database_after_sign_up_and_login(
    client: httpx.AsyncClient, database_url: str
) -> None:
    await sign_up(client, CREDS)
    assert (await log_in(client, CREDS)).status_code == 303
    token = session_cookie(client)
    assert token
    needles = [CANARY, CREDS.email, CREDS.password, token, "plaintext-check"]
    # Positive control: the scan does find what is stored (the blind index, in clear).
    (member,) = await Member.all()
    if db_kind() == "sqlite":
        await connections.get("default").execute_script("PRAGMA wal_checkpoint(FULL)")
        raw = sqlite_bytes(database_url)
        assert member.email_index.encode() in raw
        for needle in needles:
            assert needle.encode() not in raw, needle
            assert needle.encode("utf-16-le") not in raw, needle
    else:
        assert await _postgres_hits(member.email_index) == ["member.email_index"]
        for needle in needles:
            assert await _postgres_hits(needle) == [], needle
