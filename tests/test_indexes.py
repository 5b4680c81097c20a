"""Per-member work never scans other members' rows: every foreign key column, and every column
a periodic clean-up filters on, leads an index (issue 15, docs/operations.md "Growth").

Checked on the schema the database itself reports (PRAGMA index_list on SQLite, pg_index on
PostgreSQL), so an index that the migration writer dropped or misnamed is caught too.
"""

from __future__ import annotations

from typing import Any

from tortoise import Tortoise, connections
from tortoise.fields.relational import ForeignKeyFieldInstance, OneToOneFieldInstance

# (table, column) pairs that clean-ups and schedulers use in WHERE, and who uses them.
HOUSEKEEPING_COLUMNS = {
    ("authorization_code", "expires_at"),  # consent.tokens.purge_stale
    ("oauth_token", "revoked_at"),  # consent.tokens.purge_stale
    ("oauth_token", "access_expires_at"),  # consent.tokens.purge_stale
    ("oauth_token", "refresh_used_at"),  # consent.tokens.purge_stale
    ("consent_grant", "expires_at"),  # consent.grants.expire_due_grants
    ("web_session", "expires_at"),  # members.sessions.purge_expired
    ("web_session", "last_seen_at"),  # members.sessions.purge_expired
    ("login_throttle", "window_start"),  # members.throttle (old windows)
    ("access_log", "at"),  # consent.accesslog.purge_older_than (retention)
    ("export_link", "expires_at"),  # portability.links
    ("connection", "next_sync_at"),  # connectors.store.due_connections
    ("webhook_delivery", "status"),  # portability.webhooks (due deliveries)
    ("deletion_ledger", "state"),  # portability.erase.resume_pending
    ("oauth_client_flow", "expires_at"),  # connectors (expired flows)
}

PG_LEADING = """
SELECT t.relname AS tbl, a.attname AS col
FROM pg_index i
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = i.indkey[0]
WHERE n.nspname = current_schema()
"""


async def _leading_columns() -> set[tuple[str, str]]:
    """(table, column) for the first column of every index (primary keys included)."""
    conn = connections.get("default")
    if conn.capabilities.dialect == "postgres":
        _, rows = await conn.execute_query(PG_LEADING)
        return {(str(r["tbl"]), str(r["col"])) for r in rows}
    leading: set[tuple[str, str]] = set()
    for table in _tables():
        _, columns = await conn.execute_query(f'PRAGMA table_info("{table}")')
        leading |= {(table, str(c["name"])) for c in columns if int(c["pk"]) == 1}
        _, indexes = await conn.execute_query(f'PRAGMA index_list("{table}")')
        for index in indexes:
            _, info = await conn.execute_query(f'PRAGMA index_info("{index["name"]}")')
            first = min(info, key=lambda c: int(c["seqno"]))
            leading.add((table, str(first["name"])))
    return leading


def _tables() -> list[str]:
    return [m._meta.db_table for m in Tortoise.apps["models"].values()]  # type: ignore[index]


def _foreign_key_columns() -> set[tuple[str, str]]:
    found = set()
    for model in Tortoise.apps["models"].values():  # type: ignore[index]
        meta: Any = model._meta
        for name in meta.fk_fields | meta.o2o_fields:
            field = meta.fields_map[name]
            if isinstance(field, ForeignKeyFieldInstance | OneToOneFieldInstance):
                found.add((meta.db_table, meta.fields_map[name].source_field or f"{name}_id"))
    return found


async def test_every_foreign_key_column_leads_an_index(db: str) -> None:
    fks = _foreign_key_columns()
    assert ("web_session", "member_id") in fks and ("access_log", "grant_id") in fks
    missing = sorted(fks - await _leading_columns())
    assert missing == [], f"foreign keys without an index (add Meta.indexes): {missing}"


async def test_every_housekeeping_column_leads_an_index(db: str) -> None:
    tables = set(_tables())
    assert {t for t, _ in HOUSEKEEPING_COLUMNS} <= tables
    missing = sorted(HOUSEKEEPING_COLUMNS - await _leading_columns())
    assert missing == [], f"clean-up columns without an index (add Meta.indexes): {missing}"
