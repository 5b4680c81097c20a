"""Per-member operations against the number of OTHER members, on PostgreSQL (issue 15).

For each size (default 1,000 and 100,000 members) a scratch database is filled with bulk SQL:
every member with a key row, two web sessions, a grant to one app with its event, code and two
token rows, a personal token, an export link and five access-log rows. Then a few real members
are made through coop's services, and for each the bench measures, in this process:

- read: the authorized read's token check (`consent.resolve_bearer`, the hot path's query),
- login: a new web session (`sessions.start`, which first purges the member's dead sessions),
- revoke: revoking the member's grant (its tokens and codes with it),
- erase: `erase_member`, split into "key" (the transaction that destroys the key) and the purge.

It prints p50 wall time and CPU time per operation for each size, and the ratio of the
largest size to the smallest (flat = close to 1). Needs a PostgreSQL server where it may
create and drop databases (`COOP_BENCH_POSTGRES_URL`, default the test server).

Usage: python bench/scale.py [--sizes 1000 100000] [--members 15]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
from tortoise import Tortoise  # noqa: E402

from coop.apps import service as apps  # noqa: E402
from coop.config import Settings  # noqa: E402
from coop.consent import grants, personal  # noqa: E402
from coop.consent import service as consent  # noqa: E402
from coop.consent.models import OAuthToken  # noqa: E402
from coop.consent.tokens import ACCESS_PREFIX, token_hash  # noqa: E402
from coop.db import tortoise_config  # noqa: E402
from coop.members import service as members  # noqa: E402
from coop.members import sessions  # noqa: E402
from coop.portability import erase  # noqa: E402
from coop.types import utcnow  # noqa: E402
from coop.vault import Vault, load_keyring, load_secret_key  # noqa: E402

ADMIN = os.environ.get("COOP_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")

FILL = [
    """INSERT INTO member (id, email_index, email_sealed, handle_sealed, password_hash,
       created_at, password_changed_at)
       SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, 'fill' || g,
              '\\x00', '\\x00', '!', now(), now() FROM generate_series(1, $1) g""",
    """INSERT INTO vault_member_key (member_id, kek_id, wrapped, created_at)
       SELECT id, 'fill', '\\x00', now() FROM member WHERE email_index LIKE 'fill%'""",
    """INSERT INTO web_session (id, token_hash, member_id, created_at, last_seen_at,
       expires_at, reauthenticated_at)
       SELECT gen_random_uuid(), md5(random()::text) || md5(random()::text), m.id, now(),
              now(), now() + interval '1 hour', now()
       FROM member m CROSS JOIN generate_series(1, 2) WHERE m.email_index LIKE 'fill%'""",
    """INSERT INTO consent_grant (id, member_id, app_id, subject, scopes, status, held,
       created_at, terms_version)
       SELECT gen_random_uuid(), id, $1::uuid, md5(id::text), '["score:reach"]', 'active', false,
              now(), 0
       FROM member WHERE email_index LIKE 'fill%'""",
    """INSERT INTO grant_event (id, grant_id, kind, at, scopes)
       SELECT gen_random_uuid(), id, 'created', now(), '[]' FROM consent_grant""",
    """INSERT INTO authorization_code (id, code_hash, grant_id, client_id, redirect_uri,
       redirect_uri_given, code_challenge, scopes, created_at, expires_at, used_at)
       SELECT gen_random_uuid(), md5(random()::text) || md5(random()::text), id, 'fill',
              'https://x.example/cb', true, 'x', '[]', now(), now(), now()
       FROM consent_grant""",
    """INSERT INTO oauth_token (id, access_hash, refresh_hash, grant_id, client_id, family_id,
       scopes, created_at, access_expires_at)
       SELECT gen_random_uuid(), md5(random()::text) || md5(random()::text),
              md5(random()::text) || md5(random()::text), g.id, 'fill', gen_random_uuid(),
              '[]', now(), now() + interval '1 hour'
       FROM consent_grant g CROSS JOIN generate_series(1, 2)""",
    """INSERT INTO personal_token (id, member_id, name, token_hash, scopes, created_at)
       SELECT gen_random_uuid(), id, 'fill', md5(random()::text) || md5(random()::text), '[]',
              now() FROM member WHERE email_index LIKE 'fill%'""",
    """INSERT INTO export_link (id, member_id, token_hash, created_at, expires_at)
       SELECT gen_random_uuid(), id, md5(random()::text) || md5(random()::text), now(), now()
       FROM member WHERE email_index LIKE 'fill%'""",
    """INSERT INTO access_log (id, member_id, grant_id, app_id, app_name, scope, resource, at)
       SELECT gen_random_uuid(), g.member_id, g.id, g.app_id, 'Fill', 'score:reach',
              'score:reach', now() FROM consent_grant g CROSS JOIN generate_series(1, 5)""",
]


def settings_for(url: str) -> Settings:
    folder = Path(tempfile.mkdtemp(prefix="coop-bench-scale-"))
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    return Settings(
        data_dir=folder / "var",
        database_url=url,
        master_key=f"bench:{key}",
        secret_key=secrets.token_urlsafe(48),
    )


async def fill(url: str, size: int, app_id: uuid.UUID) -> float:
    started = time.perf_counter()
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        for statement in FILL:
            if "$1::uuid" in statement:
                await conn.execute(statement, app_id)
            elif "$1" in statement:
                await conn.execute(statement, size)
            else:
                await conn.execute(statement)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return time.perf_counter() - started


async def timed(work: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    await work()
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


async def one_member(
    vault: Vault, settings: Settings, app: apps.RegisteredApp
) -> dict[str, tuple[float, float]]:
    member = await members.create_member(
        vault=vault, email=f"b-{secrets.token_hex(6)}@example.org", password="x" * 12
    )
    grant = await grants.create_grant(
        member_id=member.id, app_id=app.app.id, scopes=["score:reach"], lifetime="30d"
    )
    access = ACCESS_PREFIX + secrets.token_urlsafe(32)
    await OAuthToken.create(
        id=uuid.uuid4(),
        access_hash=token_hash(access),
        grant=grant,
        client_id=app.app.client_id,
        family_id=uuid.uuid4(),
        scopes=["score:reach"],
        created_at=utcnow(),
        access_expires_at=grant.expires_at,
    )
    await personal.create_personal_token(
        member_id=member.id, name="b", scopes=["profile"], lifetime="30d"
    )
    out: dict[str, tuple[float, float]] = {}
    out["read"] = await timed(lambda: consent.resolve_bearer(access))
    out["login"] = await timed(
        lambda: sessions.start(vault=vault, settings=settings, member=member, user_agent="b")
    )
    out["revoke"] = await timed(lambda: grants.revoke_grant(member_id=member.id, grant_id=grant.id))
    marks: dict[str, float] = {}

    async def mark(step: str) -> None:
        marks[step] = time.perf_counter()

    cpu = time.process_time()
    await erase.erase_member(vault=vault, settings=settings, member_id=member.id, after_step=mark)
    out["erase (key)"] = ((marks["key_destroyed"] - marks["plan"]) * 1000, 0.0)
    out["erase (purge)"] = ((marks["purged"] - marks["upstream"]) * 1000, 0.0)
    out["erase (all)"] = (
        (marks["notified"] - marks["plan"]) * 1000,
        (time.process_time() - cpu) * 1000,
    )
    return out


async def measure(size: int, samples: int) -> tuple[float, dict[str, tuple[float, float]]]:
    name = f"coop_scale_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = "postgres://" + ADMIN.split("://", 1)[1].rsplit("/", 1)[0] + f"/{name}"
    try:
        settings = settings_for(url)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        await Tortoise.init(config=tortoise_config(settings))
        await Tortoise.generate_schemas()
        vault = Vault(load_keyring(settings), load_secret_key(settings))
        app = await apps.create_app(
            name="Bench", redirect_uris=["https://x.example/cb"], vault=vault
        )
        filled = await fill(url, size, app.app.id)
        await one_member(vault, settings, app)  # warm-up
        runs = [await one_member(vault, settings, app) for _ in range(samples)]
        await Tortoise.close_connections()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    p50 = {
        op: (
            statistics.median(r[op][0] for r in runs),
            statistics.median(r[op][1] for r in runs),
        )
        for op in runs[0]
    }
    return filled, p50


async def main(sizes: list[int], samples: int) -> None:
    results = []
    for size in sizes:
        filled, p50 = await measure(size, samples)
        print(f"{size:>9,} members: filled in {filled:.1f} s", flush=True)
        results.append((size, p50))
    ops = list(results[0][1])
    print(f"\n{'operation':<15}" + "".join(f"{s:>12,} ms (cpu)" for s, _ in results) + "   ratio")
    for op in ops:
        cells = "".join(f"{p[op][0]:>9.2f} ({p[op][1]:>5.2f})" for _, p in results)
        ratio = results[-1][1][op][0] / results[0][1][op][0]
        print(f"{op:<15}{cells}   x{ratio:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 100_000])
    parser.add_argument("--members", type=int, default=15)
    args = parser.parse_args()
    asyncio.run(main(args.sizes, args.members))
