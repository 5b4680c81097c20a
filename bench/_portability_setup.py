"""Shared set-up for bench/export.py and bench/erase.py: a throw-away database (SQLite, or
one the caller made on PostgreSQL) with coop's schema and members whose records are sealed
exactly as the sync engine seals them."""

from __future__ import annotations

import base64
import itertools
import random
import secrets
import sys
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tortoise import Tortoise  # noqa: E402

from coop.config import Settings  # noqa: E402
from coop.connectors import spec, store  # noqa: E402
from coop.connectors.models import Connection, Record  # noqa: E402
from coop.db import tortoise_config  # noqa: E402
from coop.members.models import Member  # noqa: E402
from coop.types import utcnow  # noqa: E402
from coop.vault import Vault, load_keyring, load_secret_key  # noqa: E402


def make_settings(database_url: str | None = None) -> Settings:
    """Settings with fresh keys; a new SQLite file unless `database_url` names a database."""
    folder = Path(tempfile.mkdtemp(prefix="coop-bench-"))
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    return Settings(
        data_dir=folder / "var",
        database_url=database_url or f"sqlite://{folder / 'coop.sqlite3'}",
        master_key=f"bench:{key}",
        secret_key=secrets.token_urlsafe(48),
    )


async def open_db(settings: Settings) -> Vault:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await Tortoise.init(config=tortoise_config(settings))
    await Tortoise.generate_schemas(safe=True)
    return Vault(load_keyring(settings), load_secret_key(settings))


def _vocabulary(size: int = 5000) -> tuple[list[str], list[float]]:
    """Made-up words with Zipf frequencies: text that compresses about as real posts do (a
    repeated sentence would flatter the archive's deflate, which costs more on real text)."""
    rng = random.Random(0)
    syllables = [a + b for a in "bcdfghklmnprstvwz" for b in "aeiou"] + ["th", "ing", "er"]
    words = sorted({"".join(rng.choices(syllables, k=rng.randint(1, 4))) for _ in range(size)})
    rng.shuffle(words)
    return words, list(itertools.accumulate(1 / rank for rank in range(1, len(words) + 1)))


WORDS, WEIGHTS = _vocabulary()


def post_text(i: int) -> str:
    """Post `i`'s text: 10 to 60 words, about 240 characters on average, the same every run."""
    rng = random.Random(i)
    words = rng.choices(WORDS, cum_weights=WEIGHTS, k=rng.randint(10, 60))
    return " ".join(words).capitalize() + "."


async def make_member(vault: Vault, records: int) -> uuid.UUID:
    """A member with one connection and `records` sealed posts of about 350 bytes each."""
    member_id = uuid.uuid4()
    cipher = await vault.create_key(member_id)
    now = utcnow()
    await Member.create(
        id=member_id,
        email_index=secrets.token_hex(16),
        email_sealed=cipher.seal(
            "bench@example.org", table="member", column="email", row=member_id
        ),
        handle_sealed=cipher.seal("bench", table="member", column="handle", row=member_id),
        password_hash="!bench",  # noqa: S106 (matches no password)
        created_at=now,
        password_changed_at=now,
    )
    await add_posts(vault, member_id, records)
    return member_id


async def add_posts(vault: Vault, member_id: uuid.UUID, records: int) -> uuid.UUID:
    """One feed connection of the member's with `records` sealed posts of about 300 bytes
    each, sealed as the sync engine seals them; the connection's id."""
    cipher = await vault.cipher_for(member_id)
    now = utcnow()
    connection_id = uuid.uuid4()
    await Connection.create(
        id=connection_id,
        member_id=member_id,
        connector="feed",
        config_sealed=store.seal_field(cipher, connection_id, "config_sealed", {"url": "x"}),
        created_at=now,
    )
    batch: list[Record] = []
    for i in range(records):
        key = store.record_key(vault, connection_id, f"item-{i}")
        row_id = store.record_id(connection_id, key)
        record = spec.Record(
            kind=spec.POST,
            external_id=f"item-{i}",
            occurred_at=now - timedelta(minutes=i),
            counts={"likes": i % 50, "boosts": i % 7, "replies": i % 3},
            text=post_text(i),
            title=f"Post {i}",
            url=f"https://example.org/posts/{i}",
        )
        batch.append(
            Record(
                id=row_id,
                member_id=member_id,
                connection_id=connection_id,
                kind=record.kind,
                external_key=key,
                occurred_at=record.occurred_at,
                body_sealed=store.seal_body(cipher, row_id, record),
                updated_at=now,
            )
        )
        if len(batch) == 2000:
            await Record.bulk_create(batch)
            batch = []
    if batch:
        await Record.bulk_create(batch)
    return connection_id
