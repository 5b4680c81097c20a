"""The bulk fill of bench/scale.py: `size` members shaped like real ones, written server-side
into a database that `coop migrate` made, with its constraints and indexes re-created exactly
as the migrations defined them, then VACUUM ANALYZE."""

from __future__ import annotations

import asyncio
import itertools
import os
import time

import asyncpg

APPS = 5  # the fill's members grant one of this many apps (made by the caller)

# The fill reads its members from one helper table of ids (md5 -> uuid: random-looking,
# like uuid4), made first from generate_series ($1 = members). Each row's own id and hashes
# are the member's id with a tag and the row's number i (unique, and as spread out in the
# indexes as random ones; cheaper than gen_random_uuid() or sha256 per row).
_IDS = """CREATE UNLOGGED TABLE fill_member AS
    SELECT g, m, md5('g' || g)::uuid AS gr, md5('c' || g)::uuid AS c,
           replace(m::text, '-', '') AS mx
    FROM (SELECT g, md5('m' || g)::uuid AS m FROM generate_series(1, $1) g) ids"""
_tags = itertools.count(1)


def _id() -> str:
    return f"overlay(f.mx placing lpad(to_hex({next(_tags)} * 256 + i), 4, '0') from 1 for 4)::uuid"


def _hash() -> str:
    return f"f.mx || lpad(to_hex({next(_tags)} * 256 + i), 32, '0')"


_M, _G, _C = "f.m", "f.gr", "f.c"  # the member's id, its grant's, its connection's
_BLOB = "decode(repeat('a5', {n}), 'hex')"  # sealed bytes of a realistic length
_SERIES = "FROM fill_member f CROSS JOIN generate_series(1, {k}) i"
FILL = {
    "member": f"""(id, email_index, email_sealed, handle_sealed, password_hash, created_at,
        password_changed_at)
        SELECT {_M}, {_hash()}, {_BLOB.format(n=60)}, {_BLOB.format(n=40)},
               '$argon2id$v=19$m=19456,t=2,p=1$' || {_hash()},
               now() - f.g * interval '1 minute', now() - f.g * interval '1 minute'
        {_SERIES.format(k=1)}""",
    "vault_member_key": f"""(member_id, kek_id, wrapped, created_at)
        SELECT {_M}, $1, {_BLOB.format(n=60)}, now() {_SERIES.format(k=1)}""",
    "web_session": f"""(id, token_hash, created_at, last_seen_at, expires_at,
        reauthenticated_at, device_sealed, member_id)
        SELECT {_id()}, {_hash()}, now() - interval '2 days',
               now() - i * interval '1 day', now() + (1 - i) * interval '14 days',
               now() - interval '2 days', {_BLOB.format(n=80)}, {_M} {_SERIES.format(k=2)}""",
    "consent_grant": f"""(id, subject, scopes, status, held, created_at, expires_at, app_id,
        member_id, terms_version)
        SELECT {_G}, {_hash()}, '["score:reach", "score:cadence"]', 'active',
               false, now() - interval '3 days', now() + interval '30 days',
               ($1::uuid[])[1 + f.g % {APPS}], {_M}, 0 {_SERIES.format(k=1)}""",
    "grant_event": f"""(id, kind, at, scopes, reason, grant_id, terms_version)
        SELECT {_id()}, 'created', now() - interval '3 days',
               '["score:reach", "score:cadence"]', NULL, {_G}, 0 {_SERIES.format(k=1)}""",
    "authorization_code": f"""(id, code_hash, client_id, redirect_uri, redirect_uri_given,
        code_challenge, scopes, created_at, expires_at, used_at, grant_id)
        SELECT {_id()}, {_hash()}, 'fill', 'https://x.example/cb',
               true, {_hash()}, '["score:reach"]', now() - interval '3 days',
               now() - interval '3 days', now() - interval '3 days', {_G}
        {_SERIES.format(k=1)}""",
    "oauth_token": f"""(id, access_hash, refresh_hash, client_id, family_id, scopes,
        created_at, access_expires_at, refresh_expires_at, refresh_used_at, revoked_at,
        grant_id)
        SELECT {_id()}, {_hash()}, {_hash()}, 'fill',
               md5('f' || f.g)::uuid, '["score:reach"]', now() - i * interval '1 hour',
               now() + (2 - i) * interval '1 hour', now() + interval '30 days',
               CASE WHEN i = 1 THEN now() - interval '1 hour' END, NULL, {_G}
        {_SERIES.format(k=2)}""",
    "personal_token": f"""(id, name, token_hash, scopes, created_at, expires_at, revoked_at,
        member_id)
        SELECT {_id()}, 'laptop', {_hash()}, '["profile"]', now(),
               now() + interval '30 days', NULL, {_M} {_SERIES.format(k=1)}""",
    "export_link": f"""(id, token_hash, created_at, expires_at, used_at, member_id)
        SELECT {_id()}, {_hash()}, now() - interval '1 day',
               now() - interval '23 hours', now() - interval '1 day', {_M}
        {_SERIES.format(k=1)}""",
    "access_log": f"""(id, app_id, app_name, personal_token_id, scope, resource, at,
        grant_id, member_id)
        SELECT {_id()}, ($1::uuid[])[1 + f.g % {APPS}], 'Fill', NULL, 'score:reach',
               'score:reach', now() - (f.g % 720 + i) * interval '1 hour', {_G}, {_M}
        {_SERIES.format(k=5)}""",
    "connection": f"""(id, connector, status, status_reason, config_sealed,
        credentials_sealed, cursor_sealed, generation, lease_until, last_sync_at,
        next_sync_at, records_count, created_at, member_id)
        SELECT {_C}, 'feed', 'ok', '', {_BLOB.format(n=90)}, NULL, {_BLOB.format(n=50)}, 1,
               NULL, now() - interval '1 hour', now() + (f.g % 21600) * interval '1 second',
               5, now() - interval '3 days', {_M} {_SERIES.format(k=1)}""",
    "sync_run": f"""(id, started_at, finished_at, outcome, records_added, error_code,
        connection_id)
        SELECT {_id()}, now() - interval '1 hour', now() - interval '1 hour',
               'ok', 5, '', {_C} {_SERIES.format(k=1)}""",
    "connector_record": f"""(id, kind, external_key, occurred_at, body_sealed, updated_at,
        connection_id, member_id)
        SELECT {_id()}, 'post', {_hash()}, now() - i * interval '1 day',
               {_BLOB.format(n=300)}, now() - interval '1 hour', {_C}, {_M}
        {_SERIES.format(k=5)}""",
    "scorer_consent": f"""(id, scorer, enabled, updated_at, last_run_at, last_status,
        member_id, accepted_reads, accepted_text, accepted_version, stale_reason, kept_version)
        SELECT {_id()}, (ARRAY['reach', 'cadence'])[i], true, now(), now(), 'ok',
               {_M}, 'post', false, '1.0.0', '', '' {_SERIES.format(k=2)}""",
    "scorer_consent_event": f"""(id, scorer, action, scorer_version, reads, at, member_id,
        note)
        SELECT {_id()}, (ARRAY['reach', 'cadence'])[i], 'enabled', '1.0.0', 'post',
               now() - interval '3 days', {_M}, '' {_SERIES.format(k=2)}""",
    "score": f"""(id, scorer, scorer_version, value, inputs_digest, computed_at,
        explanation_sealed, change_sealed, member_id, inputs_sealed)
        SELECT {_id()}, (ARRAY['reach', 'cadence'])[i], '1.0.0', (f.g % 100)::float,
               {_hash()}, now() - interval '1 hour', {_BLOB.format(n=600)}, NULL,
               {_M}, NULL {_SERIES.format(k=2)}""",
}

# The biggest tables first, so the parallel connections end together.
_ROWS_PER_MEMBER = {"access_log": 5, "connector_record": 5, "web_session": 2, "oauth_token": 2}

# Constraints and indexes of the filled tables, as the migrations made them.
_CONSTRAINTS = """
SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid), c.contype::text
FROM pg_constraint c
WHERE c.contype IN ('p', 'u', 'f')
  AND (c.conrelid::regclass::text = ANY($1) OR c.confrelid::regclass::text = ANY($1))"""
_INDEXES = """
SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
FROM pg_index i
WHERE i.indrelid::regclass::text = ANY($1)
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)"""


async def _run_all(pool: asyncpg.Pool, jobs: list[tuple[str, list[object]]]) -> None:
    """Run the statements of `jobs` on all of the pool's connections at once."""
    pending = list(reversed(jobs))

    async def worker() -> None:
        async with pool.acquire() as conn:
            while pending:
                sql, args = pending.pop()
                await conn.execute(sql, *args)

    await asyncio.gather(*(worker() for _ in range(pool.get_max_size())))


async def fill(url: str, size: int, kek_id: str, parallel: int) -> float:
    """Fill every table of FILL for `size` members on `parallel` connections; seconds taken
    (re-creating the constraints and indexes, VACUUM and ANALYZE included)."""
    started = time.perf_counter()
    laps = [started]

    def lap(step: str) -> None:
        laps.append(time.perf_counter())
        if os.environ.get("COOP_BENCH_VERBOSE"):
            print(f"  {step}: {laps[-1] - laps[-2]:.1f} s", flush=True)

    # These sessions only: a failed fill is dropped with its database, never resumed.
    setup = "SET synchronous_commit = off; SET maintenance_work_mem = '256MB'"
    pool = await asyncpg.create_pool(
        url, min_size=parallel, max_size=parallel, init=lambda c: c.execute(setup)
    )
    try:
        tables = list(FILL)
        constraints = await pool.fetch(_CONSTRAINTS, tables)
        indexes = await pool.fetch(_INDEXES, tables)
        for table, name, _, _ in sorted(constraints, key=lambda c: c[3] != "f"):
            await pool.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            await pool.execute(f"DROP INDEX {name}")
        await pool.execute(_IDS, size)
        lap("ids")
        app_ids = [r[0] for r in await pool.fetch("SELECT id FROM app ORDER BY id")]
        inserts: list[tuple[str, list[object]]] = []
        for table, select in sorted(FILL.items(), key=lambda t: -_ROWS_PER_MEMBER.get(t[0], 1)):
            args: list[object] = []
            if "$1" in select:
                args.append(kek_id if table == "vault_member_key" else app_ids)
            inserts.append((f"INSERT INTO {table} {select}", args))
        await _run_all(pool, inserts)
        await pool.execute("DROP TABLE fill_member")
        lap("rows")
        # Keys and unique constraints, and the other indexes, one table per job (a key's
        # ALTER TABLE locks its table); then the foreign keys, each validated.
        keys: dict[str, list[str]] = {}
        for table, name, definition, kind in constraints:
            if kind != "f":
                keys.setdefault(table, []).append(
                    f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'
                )
        for _, definition in indexes:
            keys.setdefault(definition.split(" ON ", 1)[1].split()[0], []).append(definition)
        await _run_all(pool, [("; ".join(stmts), []) for stmts in keys.values()])
        lap("keys and indexes")
        await _run_all(
            pool,
            [
                (f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}', [])
                for table, name, definition, kind in constraints
                if kind == "f"
            ],
        )
        lap("foreign keys")
        every = await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        await _run_all(pool, [(f'VACUUM ANALYZE "{row[0]}"', []) for row in every])
        lap("vacuum analyze")
    finally:
        await pool.close()
    return time.perf_counter() - started
