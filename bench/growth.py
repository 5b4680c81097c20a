"""Storage growth: bytes on disk per access-log row and per stored score on PostgreSQL, table
and indexes together, from rows written the way coop writes them.

Multiply by a member's reads (and changed scores) per day for the growth per member per day;
docs/operations.md ("Growth") has the figures. Needs a PostgreSQL server where it may create
and drop a scratch database (`COOP_BENCH_POSTGRES_URL`, default the test server).

Usage: python bench/growth.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
from tortoise import Tortoise  # noqa: E402

from coop.config import Settings  # noqa: E402
from coop.db import tortoise_config  # noqa: E402

ADMIN = os.environ.get("COOP_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")

# One member, one app grant; `rows` log rows spread over a year, as accesslog.record writes them.
SEED = """
INSERT INTO member (id, email_index, email_sealed, handle_sealed, password_hash, created_at,
                    password_changed_at)
VALUES ($1, 'bench', '\\x00', '\\x00', '!', now(), now());
"""
LOG = """
INSERT INTO access_log (id, member_id, grant_id, app_id, app_name, personal_token_id, scope,
                        resource, at)
SELECT gen_random_uuid(), $1, NULL, gen_random_uuid(), 'Example lender', NULL, 'score:reach',
       'score:reach', now() - (g || ' seconds')::interval
FROM generate_series(1, $2) AS g
"""
SCORE = """
INSERT INTO score (id, member_id, scorer, scorer_version, value, inputs_digest, computed_at,
                   explanation_sealed, change_sealed)
SELECT gen_random_uuid(), $1, 'reach', '1.0.0', random() * 100, md5(g::text) || md5(g::text),
       now() - (g || ' seconds')::interval, $3::bytea, NULL
FROM generate_series(1, $2) AS g
"""


async def measure(rows: int) -> dict[str, float]:
    name = f"coop_growth_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN.rsplit("/", 1)[0] + f"/{name}"
    try:
        await Tortoise.init(config=tortoise_config(Settings(), url=url))
        await Tortoise.generate_schemas()
        await Tortoise.close_connections()
        conn = await asyncpg.connect(url)
        member = "00000000-0000-4000-8000-000000000001"
        await conn.execute(SEED, member)
        await conn.execute(LOG, member, rows)
        # A sealed reach explanation is about 3.3 KB (issue 15); random bytes do not compress.
        await conn.execute(SCORE, member, rows // 10, secrets.token_bytes(3300))
        await conn.execute("VACUUM ANALYZE access_log, score")
        sizes = {}
        for table, count in (("access_log", rows), ("score", rows // 10)):
            total = await conn.fetchval("SELECT pg_total_relation_size($1)", table)
            sizes[table] = total / count
        await conn.close()
        return sizes
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    sizes = asyncio.run(measure(args.rows))
    print(f"access_log bytes per row (table + indexes): {sizes['access_log']:.0f}")
    print(f"score bytes per row (table + TOAST + indexes): {sizes['score']:.0f}")
    for reads in (10, 100, 1000):
        per_day = reads * sizes["access_log"]
        print(f"{reads:>5} reads/member/day: {per_day / 1024:.1f} KiB/member/day, ", end="")
        print(f"{per_day * 1_000_000 / 2**30:.1f} GiB/day for 1M members")


if __name__ == "__main__":
    main()
