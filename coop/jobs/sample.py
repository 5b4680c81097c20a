"""`coop dev`'s sample member: an account, twelve weeks of sample posts imported the way a
member's upload is (a Mastodon archive through the archive connector, sealed under the
member's key), and every installed scorer enabled and scored. Running it again reuses the
account and the records (the archive's post ids are stable)."""

from __future__ import annotations

import io
import json
import random
import uuid
import zipfile
from dataclasses import dataclass
from datetime import datetime, timedelta

from coop.jobs import sync
from coop.jobs.scoring import ScoringFlow
from coop.members import passwords
from coop.members import service as members
from coop.scoring import service as scoring
from coop.types import utcnow
from coop.vault import Vault

EMAIL = "sample@example.org"
WEEKS = 12
PER_WEEK = 3
STATUSES = "https://example.org/users/sample/statuses/"


@dataclass(frozen=True)
class Sample:
    email: str
    password: str
    member_id: uuid.UUID
    created: bool
    posts: int
    outcomes: tuple[scoring.ScoreOutcome, ...]


def password_for(vault: Vault) -> str:
    """The sample member's password: derived from this data dir's server secret, so every
    run prints the same one and no other coop has it."""
    return vault.blind_index("sample member", purpose="dev-password")[:24]


def _note(n: int, when: datetime, rng: random.Random) -> dict[str, object]:
    note_id = f"{STATUSES}{n}"
    return {
        "type": "Create",
        "published": when.isoformat(),
        "object": {
            "type": "Note",
            "id": note_id,
            "url": note_id,
            "published": when.isoformat(),
            "content": f"<p>Sample post {n}</p>",
            "replies": {"totalItems": rng.randint(0, 3)},
            "likes": {"totalItems": rng.randint(0, 12)},
            "shares": {"totalItems": rng.randint(0, 4)},
        },
    }


def archive(now: datetime) -> tuple[bytes, int]:
    """A Mastodon export (outbox.json) of PER_WEEK posts a week for WEEKS weeks before `now`,
    with a few replies, favourites and boosts each; and how many posts it holds."""
    rng = random.Random(7)  # noqa: S311 - sample data, not secrets
    items = [
        _note(week * PER_WEEK + i, now - timedelta(days=week * 7 + i * 2, hours=3), rng)
        for week in range(WEEKS)
        for i in range(PER_WEEK)
    ]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("outbox.json", json.dumps({"orderedItems": items}))
    return buffer.getvalue(), len(items)


async def _member(vault: Vault, password: str) -> tuple[uuid.UUID, bool]:
    found = await members.find_member_by_email(vault=vault, email=EMAIL)
    if found is not None:
        if not await passwords.verify_password(found.password_hash, password):
            await members.reset_password(member=found, password=password)  # changed on Account
        return found.id, False
    created = await members.create_member(vault=vault, email=EMAIL, password=password)
    return created.id, True


async def seed(*, vault: Vault, jobs: sync.Jobs, flow: ScoringFlow) -> Sample:
    """Create (or reuse) the sample member, import its posts, enable every installed scorer
    and score it."""
    password = password_for(vault)
    member_id, created = await _member(vault, password)
    data, posts = archive(utcnow())
    await sync.import_archive(jobs, member_id=member_id, data=data)
    for meta in await flow.available():
        await scoring.enable_scorer(member_id=member_id, meta=meta)
    outcomes = await flow.recompute_member(member_id=member_id)
    return Sample(EMAIL, password, member_id, created, posts, tuple(outcomes))


async def count_other_members(vault: Vault | None) -> int:
    """How many members the database holds besides the sample member (all of them when the
    server secret that finds it is not there)."""
    sample_index = members.email_index(vault, EMAIL) if vault is not None else None
    return await members.count_members(excluding_index=sample_index)
