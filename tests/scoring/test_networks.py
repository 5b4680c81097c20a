"""Records from every network reach the reference scorers once each, with their network: the
reasons name it, and an item two connections both brought counts once."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from coop.connectors import spec, store
from coop.connectors.models import Connection, Record
from coop.jobs.scoring import ScoringFlow, load_member_records
from coop.scoring import service
from coop.scoring.sandbox import Sandbox
from coop.types import utcnow
from coop.vault import Vault
from tests.scoring.factories import make_member

pytestmark = pytest.mark.timeout(60)


async def add_to(
    vault: Vault, member_id: uuid.UUID, connector: str, records: list[spec.Record]
) -> None:
    """Store records under a new connection to `connector`, as its sync would."""
    cipher = await vault.cipher_for(member_id)
    cid = uuid.uuid4()
    await Connection.create(
        id=cid,
        member_id=member_id,
        connector=connector,
        config_sealed=store.seal_field(cipher, cid, "config_sealed", {}),
        created_at=utcnow(),
    )
    for record in records:
        key = store.record_key(vault, cid, record.external_id)
        row_id = store.record_id(cid, key)
        await Record.create(
            id=row_id,
            member_id=member_id,
            connection_id=cid,
            kind=record.kind,
            external_key=key,
            occurred_at=record.occurred_at,
            body_sealed=store.seal_body(cipher, row_id, record),
            updated_at=utcnow(),
        )


def post(ext: str, days: float, likes: int, **kw: str) -> spec.Record:
    when = utcnow() - timedelta(days=days)
    return spec.Record(
        kind=spec.POST, external_id=ext, occurred_at=when, counts={"favourites": likes}, **kw
    )


STATUS = "https://social.example/@me/1"


async def seeded(vault: Vault) -> uuid.UUID:
    member = await make_member(vault)
    await add_to(vault, member, "bluesky", [post("b1", 1, 20), post("b2", 9, 5)])
    await add_to(vault, member, "mastodon", [post("101", 2, 7, url=STATUS)])
    # The same status again, from an uploaded Mastodon archive, with an older count.
    await add_to(vault, member, "archive", [post("m:1", 2, 3, url=STATUS, network="mastodon")])
    await add_to(vault, member, "facebook", [post("f1", 3, 0, network="facebook")])
    return member


async def test_each_item_reaches_scorers_once_with_its_network(db: str, vault: Vault) -> None:
    member = await seeded(vault)

    records = await load_member_records(vault=vault, member_id=member, kinds=["post"])

    assert sorted((r.network, r.counts.get("favourites")) for r in records) == [
        ("bluesky", 5),
        ("bluesky", 20),
        ("facebook", 0),
        ("mastodon", 7),  # the copy with more reactions stays
    ]


async def test_reference_scorers_name_the_network_of_each_record(
    db: str, vault: Vault, sandbox: Sandbox
) -> None:
    member = await seeded(vault)
    flow = ScoringFlow(vault=vault, runner=sandbox)

    await flow.enable(member_id=member, scorer="reach")
    await flow.enable(member_id=member, scorer="cadence")

    current = {
        s.scorer: s for s in await service.list_current_scores(vault=vault, member_id=member)
    }
    reach, cadence = current["reach"], current["cadence"]
    assert reach.explanation is not None and cadence.explanation is not None
    reasons = [c.reason for c in reach.explanation.contributions]
    assert any(r.startswith("post on Bluesky of ") for r in reasons)
    assert any(r.startswith("post on Mastodon of ") for r in reasons)
    assert any(r.startswith("By network: Bluesky") for r in reach.explanation.reasons)
    weeks = " ".join(c.reason for c in cadence.explanation.contributions)
    assert "Bluesky" in weeks and "Facebook 1" in weeks and "Mastodon 1" in weeks
