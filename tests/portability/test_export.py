"""Export: complete (1:1 with the inventory), valid against its schema, no secrets, no one
else's data, streamed with flat memory (EX-01, EX-02, EX-04)."""

from __future__ import annotations

import io
import json
import tracemalloc
import zipfile
from typing import Any

import jsonschema
import pytest

from coop.config import Settings
from coop.consent.models import OAuthToken, PersonalToken
from coop.members.models import Member, WebSession
from coop.portability import export, inventory
from coop.vault import Vault
from coop.vault.models import MemberKey
from tests.portability.factories import add_records, make_app, make_person


async def collect(vault: Vault, member_id: Any) -> bytes:
    out = bytearray()
    async for chunk in await export.stream_export(vault=vault, member_id=member_id):
        out.extend(chunk)
    return bytes(out)


def files_of(archive: bytes) -> dict[str, Any]:
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        assert zf.testzip() is None
        return {
            name: zf.read(name).decode()
            if not name.endswith(".json")
            else json.loads(zf.read(name))
            for name in zf.namelist()
        }


def exported_counts(files: dict[str, Any]) -> dict[str, int]:
    """Rows per table, as read back from the export (the inverse of export.COVERAGE)."""
    consents = files["scorer_consents.json"]
    grants = files["grants.json"]
    counts = {
        "member": 1,
        "sharing_pause": 1 if files["profile.json"]["sharing_paused_since"] else 0,
        "governance_statistics_consent": 1 if files["profile.json"]["shares_previews_since"] else 0,
        "web_session": len(files["sessions.json"]),
        "personal_token": len(files["personal_tokens.json"]),
        "connection": len(files["connections.json"]),
        "sync_run": sum(len(c["sync_history"]) for c in files["connections.json"]),
        "connector_record": len(files["records.json"]),
        "score": len(files["scores.json"]),
        "scorer_consent": len(consents["current"]),
        "scorer_consent_event": len(consents["history"]),
        "consent_grant": len(grants),
        "grant_event": sum(len(g["events"]) for g in grants),
        "oauth_token": sum(len(g["tokens"]) for g in grants),
        "access_log": len(files["access_log.json"]),
        "app": len(files["apps.json"]),
    }
    return {k: v for k, v in counts.items() if v}


async def test_export_matches_the_inventory_one_to_one_and_validates(
    db: str, vault: Vault, settings: Settings
) -> None:
    app_a, _ = await make_app(vault, "Alpha")
    app_b, _ = await make_app(vault, "Beta")
    person = await make_person(
        vault, settings, app_ids=[app_a, app_b], connectors=("feed", "mastodon", "github")
    )
    await make_person(vault, settings, app_ids=[app_a])
    files = files_of(await collect(vault, person.member_id))

    inv = await inventory.count_rows(person.member_id)
    uncovered = set(inv) - set(export.COVERAGE) - set(export.EXCLUDED)
    assert not uncovered, f"tables neither exported nor excluded: {uncovered}"
    expected = {t: n for t, n in inv.items() if t in export.COVERAGE}
    assert exported_counts(files) == expected

    schema = files[export.SCHEMA_NAME]
    assert schema == json.loads(export.schema_bytes())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(files["manifest.json"], schema)
    for name, body in files.items():
        if name.endswith(".json") and name not in ("manifest.json", export.SCHEMA_NAME):
            definition = name.removesuffix(".json")
            if name.startswith(export.BUNDLES):
                definition = "proof_bundle"
            ref = {"$ref": f"#/$defs/{definition}", "$defs": schema["$defs"]}
            jsonschema.validate(body, ref)
    # These scores were stored without their inputs (as before coop kept them): no bundle.
    assert not [name for name in files if name.startswith(export.BUNDLES)]
    assert files["profile.json"]["email"] == person.email
    assert files["manifest.json"]["counts"]["records.json"] == person.records
    assert "README.md" in files


def test_the_published_schema_is_the_shipped_one() -> None:
    from pathlib import Path

    published = Path(__file__).parents[2] / "docs" / "export.schema.json"
    assert json.loads(published.read_text()) == json.loads(export.schema_bytes())


async def test_export_has_no_secrets_and_nothing_of_another_member(
    db: str, vault: Vault, settings: Settings
) -> None:
    app_a, secret = await make_app(vault, "Alpha")
    person = await make_person(vault, settings, app_ids=[app_a])
    other = await make_person(vault, settings, app_ids=[app_a])
    raw = files_of(await collect(vault, person.member_id))
    text = json.dumps(raw)

    assert other.canary not in text and str(other.member_id) not in text
    secrets = [
        person.session_token,
        person.personal_token,
        secret,
        *person.access_tokens,
        *person.refresh_tokens,
        f"up-{person.canary}",
    ]
    member = await Member.get(id=person.member_id)
    secrets.append(member.password_hash)
    secrets += [s.token_hash for s in await WebSession.filter(member_id=person.member_id)]
    secrets += [t.token_hash for t in await PersonalToken.filter(member_id=person.member_id)]
    secrets += [t.access_hash for t in await OAuthToken.all()]
    key = await MemberKey.get(member_id=person.member_id)
    secrets.append(bytes(key.wrapped).hex())
    for value in secrets:
        assert value not in text
    assert "password_hash" not in text and "$argon2" not in text


async def test_export_memory_stays_flat_as_records_grow(
    db: str, vault: Vault, settings: Settings
) -> None:
    small = await make_person(vault, settings, records=0, connectors=("feed",))
    large = await make_person(vault, settings, records=0, connectors=("feed",))
    from coop.connectors.models import Connection

    for person, n in ((small, 300), (large, 3000)):
        connection = await Connection.get(member_id=person.member_id)
        await add_records(vault, person.member_id, connection.id, person.canary, n)

    async def peak(member_id: Any) -> int:
        tracemalloc.start()
        size = 0
        async for chunk in await export.stream_export(vault=vault, member_id=member_id):
            size += len(chunk)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert size > 0
        return top

    small_peak, large_peak = await peak(small.member_id), await peak(large.member_id)
    # 10x the records must not cost anywhere near 10x the memory (pages of 500 rows).
    assert large_peak < small_peak * 3, (small_peak, large_peak)


async def test_records_cross_page_boundaries_each_once_in_key_order(
    db: str, vault: Vault, settings: Settings
) -> None:
    from coop.connectors.models import Connection, Record

    person = await make_person(vault, settings, records=0, connectors=("feed", "mastodon"))
    connections = await Connection.filter(member_id=person.member_id).order_by("created_at")
    sizes = (export.PAGE * 2 + 1, export.PAGE)  # a page boundary, and a last page that is full
    for connection, n in zip(connections, sizes, strict=True):
        await add_records(vault, person.member_id, connection.id, person.canary, n)

    records = files_of(await collect(vault, person.member_id))["records.json"]

    expected = []
    for connection in connections:
        keys = await Record.filter(connection_id=connection.id).order_by("external_key")
        expected += [str(r.id) for r in keys]
    assert [r["id"] for r in records] == expected
    texts = {r["text"] for r in records}
    assert len(texts) == max(sizes)  # add_records numbers the posts of each connection from 0
    assert all(r["text"].endswith(f"by {person.canary}") for r in records)


async def test_a_record_of_another_member_under_the_members_connection_stops_the_export(
    db: str, vault: Vault, settings: Settings
) -> None:
    from coop.connectors.models import Connection, Record
    from coop.errors import IntegrityError

    person = await make_person(vault, settings, records=3, connectors=("feed",))
    other = await make_person(vault, settings, records=0, connectors=())
    connection = await Connection.get(member_id=person.member_id)
    moved = await Record.filter(connection_id=connection.id).first()
    assert moved is not None
    await Record.filter(id=moved.id).update(member_id=other.member_id)

    with pytest.raises(IntegrityError):
        await collect(vault, person.member_id)


def _as_sealed(i: int, canary: str) -> dict[str, Any]:
    """Record `i`'s fields, varied where encoding can go wrong: escapes, non-ASCII text, empty
    and missing fields, a network, timestamps with and without microseconds."""
    from datetime import UTC, datetime, timedelta

    from coop.connectors import spec

    texts = ['say "hi"\\n\u00e9\u00e8 \u6f22\u5b57 \U0001f600', "tab\there\u2028", "", None]
    return {
        "kind": spec.POST if i % 3 else spec.ACTIVITY,
        "external_id": f"{canary}-{i}",
        "occurred_at": datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=i, microseconds=i % 2),
        "counts": {} if i % 4 == 0 else {"likes": i, "replies": 0},
        "text": texts[i % len(texts)],
        "title": None if i % 5 == 0 else f"t\u00eftle {i}",
        "url": None if i % 7 == 0 else f"https://{canary}.example/{i}?a=1&b=<2>",
        "network": "bluesky" if i % 2 else None,
    }


async def _store_varied_records(
    vault: Vault, member_id: Any, connection_id: Any, canary: str, n: int
) -> None:
    from coop.connectors import spec, store
    from coop.connectors.models import Record
    from coop.types import utcnow

    cipher = await vault.cipher_for(member_id)
    rows = []
    for i in range(n):
        record = spec.Record(**_as_sealed(i, canary))
        key = store.record_key(vault, connection_id, record.external_id)
        row_id = store.record_id(connection_id, key)
        rows.append(
            Record(
                id=row_id,
                member_id=member_id,
                connection_id=connection_id,
                kind=record.kind,
                external_key=key,
                occurred_at=record.occurred_at,
                body_sealed=store.seal_body(cipher, row_id, record),
                updated_at=utcnow().replace(microsecond=0) if i % 2 else utcnow(),
            )
        )
    await Record.bulk_create(rows)


async def test_records_json_is_each_record_as_the_orm_reads_it_byte_for_byte(
    db: str, vault: Vault, settings: Settings
) -> None:
    """The export reads records raw and fast; this reads them through the ORM, the slow
    and obvious way, and encodes them with json.dumps: the bytes must be the same."""
    from coop.connectors import store
    from coop.connectors.models import Connection, Record

    person = await make_person(vault, settings, records=0, connectors=("feed", "mastodon"))
    connections = await Connection.filter(member_id=person.member_id).order_by("created_at")
    for connection, n in zip(connections, (export.PAGE + 3, 11), strict=True):
        await _store_varied_records(vault, person.member_id, connection.id, person.canary, n)

    with zipfile.ZipFile(io.BytesIO(await collect(vault, person.member_id))) as zf:
        exported = zf.read("records.json")

    cipher = await vault.cipher_for(person.member_id)
    items = []
    for connection in connections:
        for row in await Record.filter(connection_id=connection.id).order_by("external_key"):
            body = cipher.open_json(
                row.body_sealed, table=store.RECORD_TABLE, column="body_sealed", row=row.id
            )
            item = {
                "id": str(row.id),
                "connection_id": str(connection.id),
                "kind": row.kind,
                "occurred_at": row.occurred_at.isoformat(),
                "updated_at": row.updated_at.isoformat(),
                "counts": body.get("counts") or {},
                "text": body.get("text"),
                "title": body.get("title"),
                "url": body.get("url"),
                "network": body.get("network"),
            }
            items.append(json.dumps(item, ensure_ascii=False, separators=(",", ":")))
    assert len(items) == export.PAGE + 14
    assert exported == ("[\n" + ",\n".join(items) + "\n]\n").encode()


@pytest.mark.parametrize(
    "stored",
    [
        # as tortoise stores a datetime on SQLite (`isoformat(" ")`)
        "2026-12-03 19:20:01.366783+00:00",
        "2026-12-03 19:20:01+00:00",
        "2026-12-03 19:20:01.000001+05:30",
        "0999-01-02 03:04:05-03:00",
        "2026-12-03 19:20:01",
        "2026-12-03 19:20:01.5",
        # written by anything else: parsed, as before
        "2026-12-03 19:20:01.366+00:00",
        "2026-12-03 19:20:01.000000+00:00",
        "2026-12-03T19:20:01+00:00",
        "2026-12-03 19:20:01.123456+05:30:15",
    ],
)
def test_a_stored_timestamp_is_exported_as_parsing_it_would(stored: str) -> None:
    from datetime import datetime

    assert export._iso(stored) == datetime.fromisoformat(stored).isoformat()


async def test_record_pages_walk_the_index_on_postgres_even_without_statistics(
    engine: str, db: str, vault: Vault, settings: Settings
) -> None:
    """Statistics that expect a few rows for the connection (never analyzed here) would make
    each page a scan of all the connection's remaining rows plus a sort: quadratic."""
    if engine != "postgres":
        pytest.skip("the PostgreSQL planner (SQLite walks the index it is given)")
    from coop.connectors.models import Connection

    person = await make_person(vault, settings, records=0, connectors=("feed",))
    connection = await Connection.get(member_id=person.member_id)
    await add_records(vault, person.member_id, connection.id, person.canary, 2000)
    sql, params = export._record_page_query(connection.id, person.member_id, "0")

    plan = "\n".join(row[0] for row in await export._along_the_index("EXPLAIN " + sql, params))

    assert "Sort" not in plan, plan
    assert "Index Scan using" in plan, plan
