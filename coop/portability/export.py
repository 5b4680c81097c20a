"""Export everything coop holds about a member as a ZIP of JSON files, streamed as it is built.

Every file is described by `export.schema.json` (shipped inside the archive and published as
docs/export.schema.json). Large collections (records, the access log) are read in keyset
pages and written as they are decrypted, so memory stays flat whatever the member's size.
Secrets are never exported: no token values or hashes, no password hash, no data key, no
upstream credentials (EX-02).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from importlib import resources
from typing import Any

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from coop.apps.models import App
from coop.connectors import store
from coop.connectors.models import Connection, Record, SyncRun
from coop.consent.disclosure import levels_of
from coop.consent.models import (
    AccessLogEntry,
    Grant,
    GrantEvent,
    OAuthToken,
    PersonalToken,
    SharingPause,
)
from coop.db import db_kind, read_tuples
from coop.errors import IntegrityError
from coop.governance import service as governance
from coop.governance.models import StatisticsConsent
from coop.members.models import Member, WebSession
from coop.portability import consent_receipts
from coop.portability.zipstream import ZipStream
from coop.scoring import bundles
from coop.scoring import service as scoring
from coop.scoring.models import Score, ScorerConsent, ScorerConsentEvent
from coop.types import utcnow
from coop.vault import MemberCipher, Vault

FORMAT_VERSION = 1
PAGE = 500
SCHEMA_NAME = "export.schema.json"
BUNDLES = "bundles/"  # proof bundles, one per current score: bundles/<scorer>.json
# ISA-L's default level (of 0-3): on the export's JSON ~4x faster than zlib's fastest level
# (which it replaced) for an archive ~4 % smaller (docs/benchmarks.md).
DEFLATE_LEVEL = 2

# Where each member-keyed table is exported (the completeness test holds the export to the
# inventory 1:1), and the tables deliberately left out, with the reason.
COVERAGE = {
    "member": "profile.json",
    "sharing_pause": "profile.json",
    "governance_statistics_consent": "profile.json",
    "web_session": "sessions.json",
    "personal_token": "personal_tokens.json",
    "connection": "connections.json",
    "sync_run": "connections.json",
    "connector_record": "records.json",
    "score": "scores.json",
    "scorer_consent": "scorer_consents.json",
    "scorer_consent_event": "scorer_consents.json",
    "consent_grant": "grants.json",
    "grant_event": "grants.json",
    "oauth_token": "grants.json",
    "access_log": "access_log.json",
    "app": "apps.json",
}
EXCLUDED = {
    "vault_member_key": "your data key itself is never exported (it is what protects the rest)",
    "authorization_code": "one-time codes that live 60 seconds; the grant they belong to is",
    "export_link": "single-use download links for exports",
    "score_preview": "what a new scorer version would give, until you accept it (then it is a "
    "score in scores.json) or keep your current score",
    "score_notice": "delivery bookkeeping of score-change notices; each delivered one is in "
    "access_log.json as 'notified'",
}


def _explanation(opened: dict[str, Any]) -> dict[str, Any]:
    """A score's explanation with its breakdown as rows in the scorer's order."""
    rows = scoring.breakdown_rows(opened.get("breakdown"))
    return {**opened, "breakdown": [{"name": k, "value": v} for k, v in rows]}


def _iso(value: datetime | str | None) -> str | None:
    if isinstance(value, str):  # a raw SQLite timestamp
        if value[10:11] == " " and len(value) in _STORED_LENGTHS and value[20:26] != "000000":
            # Tortoise writes a datetime to SQLite as `dt.isoformat(" ")` (its sqlite3
            # adapter), and the export writes `dt.isoformat()`: the same text but for the
            # separator after the 10-character date. Parsing it costs a microsecond a record;
            # text of any other shape (none of coop's writers makes it) is still parsed.
            return value[:10] + "T" + value[11:]
        return datetime.fromisoformat(value).isoformat()
    return value.isoformat() if value else None


# Lengths of `isoformat(" ")`: naive or with a +HH:MM offset, without or with microseconds
# (never ".000000": isoformat leaves out a zero fraction).
_STORED_LENGTHS = frozenset((19, 26, 25, 32))


# One encoder for the whole export: json.dumps with options builds a new one per call.
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_decode = json.JSONDecoder().decode  # json.loads, less its checks of a bytes argument


def _dump(value: Any) -> bytes:
    return _encode(value).encode()


def schema_bytes() -> bytes:
    return resources.files("coop.portability").joinpath(SCHEMA_NAME).read_bytes()


def filename(today: date) -> str:
    return f"coop-export-{today.isoformat()}.zip"


@dataclass(frozen=True)
class ExportSummary:
    """What the export page shows before the download starts (the progress indication)."""

    records: int
    connections: int
    scores: int
    grants: int
    access_log: int


async def summarize(*, member_id: uuid.UUID) -> ExportSummary:
    return ExportSummary(
        records=await Record.filter(member_id=member_id).count(),
        connections=await Connection.filter(member_id=member_id).count(),
        scores=await Score.filter(member_id=member_id).count(),
        grants=await Grant.filter(member_id=member_id).count(),
        access_log=await AccessLogEntry.filter(member_id=member_id).count(),
    )


class _Counter:
    def __init__(self) -> None:
        self.files: dict[str, int] = {}


async def _array(
    counter: _Counter, name: str, items: AsyncIterator[dict[str, Any]]
) -> AsyncIterator[bytes]:
    """A JSON array written item by item."""
    count = 0
    yield b"["
    async for item in items:
        yield (b",\n" if count else b"\n") + _dump(item)
        count += 1
    yield b"\n]\n"
    counter.files[name] = count


async def _encoded_array(
    counter: _Counter, name: str, pages: AsyncIterator[list[str]]
) -> AsyncIterator[bytes]:
    """A JSON array of items already encoded, page by page: the same bytes as `_array`, with
    one write to the archive per page instead of one per item."""
    count = 0
    yield b"["
    async for page in pages:
        if page:
            yield ((",\n" if count else "\n") + ",\n".join(page)).encode()
            count += len(page)
    yield b"\n]\n"
    counter.files[name] = count


async def _one(value: Any) -> AsyncIterator[bytes]:
    yield _dump(value) + b"\n"


async def _pages(
    query: Callable[[Any], Awaitable[list[Any]]],
) -> AsyncIterator[Any]:
    """Keyset pagination: `query(last_row_or_None)` returns the next page after that row."""
    last: Any = None
    while True:
        rows = await query(last)
        for row in rows:
            yield row
        if len(rows) < PAGE:
            return
        last = rows[-1]


# -- sections ---------------------------------------------------------------------------------


async def _profile(member: Member, cipher: MemberCipher) -> dict[str, Any]:
    pause = await SharingPause.get_or_none(member_id=member.id)
    shares = await StatisticsConsent.get_or_none(member_id=member.id)
    return {
        "id": str(member.id),
        "email": cipher.open_text(
            member.email_sealed, table="member", column="email", row=member.id
        ),
        "handle": cipher.open_text(
            member.handle_sealed, table="member", column="handle", row=member.id
        ),
        "created_at": _iso(member.created_at),
        "password_changed_at": _iso(member.password_changed_at),
        "sharing_paused_since": _iso(pause.since) if pause else None,
        "shares_previews_since": _iso(shares.shared_at) if shares else None,
    }


async def _sessions(member_id: uuid.UUID, cipher: MemberCipher) -> AsyncIterator[dict[str, Any]]:
    for row in await WebSession.filter(member_id=member_id).order_by("created_at"):
        device = (
            cipher.open_text(row.device_sealed, table="web_session", column="device", row=row.id)
            if row.device_sealed is not None
            else None
        )
        yield {
            "id": str(row.id),
            "device": device,
            "created_at": _iso(row.created_at),
            "last_seen_at": _iso(row.last_seen_at),
            "expires_at": _iso(row.expires_at),
        }


async def _personal_tokens(member_id: uuid.UUID) -> AsyncIterator[dict[str, Any]]:
    for row in await PersonalToken.filter(member_id=member_id).order_by("created_at"):
        yield {
            "id": str(row.id),
            "name": row.name,
            "scopes": list(row.scopes),
            "created_at": _iso(row.created_at),
            "expires_at": _iso(row.expires_at),
            "revoked_at": _iso(row.revoked_at),
        }


async def _connections(member_id: uuid.UUID, cipher: MemberCipher) -> AsyncIterator[dict[str, Any]]:
    for row in await Connection.filter(member_id=member_id).order_by("created_at"):
        runs = await SyncRun.filter(connection_id=row.id).order_by("started_at")
        yield {
            "id": str(row.id),
            "connector": row.connector,
            "status": row.status,
            "status_reason": row.status_reason,
            "config": store.open_field(cipher, row, "config_sealed") or {},
            "created_at": _iso(row.created_at),
            "last_sync_at": _iso(row.last_sync_at),
            "records_count": row.records_count,
            "sync_history": [
                {
                    "id": str(r.id),
                    "started_at": _iso(r.started_at),
                    "finished_at": _iso(r.finished_at),
                    "outcome": r.outcome,
                    "records_added": r.records_added,
                    "error_code": r.error_code,
                }
                for r in runs
            ],
        }


async def _records(member_id: uuid.UUID, cipher: MemberCipher) -> AsyncIterator[list[str]]:
    """Pages of encoded records. Keyset pages along the (connection_id, external_key) unique
    index: each page is one index range scan, so the export stays linear however many records
    there are."""
    open_body = cipher.column_opener(table=store.RECORD_TABLE, column="body_sealed")
    for connection in await Connection.filter(member_id=member_id).order_by("created_at"):
        connection_id = str(connection.id)
        after: str | None = None
        while True:
            rows = await _record_page(connection.id, member_id, after)
            yield _encode_records(rows, connection_id, open_body)
            if len(rows) < PAGE:
                break
            after = str(rows[-1][RECORD_KEY])


# What a page of records reads, in this order; `mine` tells whether the row is the member's.
RECORD_COLUMNS = ("id", "kind", "occurred_at", "updated_at", "body_sealed", "external_key")
RECORD_KEY = 5


async def _record_page(
    connection_id: uuid.UUID, member_id: uuid.UUID, after: str | None
) -> list[Sequence[Any]]:
    """One page of raw rows: RECORD_COLUMNS, then `mine`. Plain SQL on purpose: turning 100k
    rows into models (and their timestamps through tortoise's parser) costs more than
    decrypting them, and one statement per page is one write to the archive."""
    sql, params = _record_page_query(connection_id, member_id, after)
    if db_kind() == "postgres":
        return await _along_the_index(sql, params)
    return await read_tuples(sql, params)


def _record_page_query(
    connection_id: uuid.UUID, member_id: uuid.UUID, after: str | None
) -> tuple[str, list[Any]]:
    postgres = db_kind() == "postgres"
    ids: list[Any] = (
        [member_id, connection_id] if postgres else [str(member_id), str(connection_id)]
    )
    # Only the connection in the WHERE clause, so the planner walks the unique
    # (connection_id, external_key) index; the member is compared on each row it returns.
    params: list[Any] = ids
    where = "connection_id = {}"
    if after is not None:
        params.append(after)
        where += " AND external_key > {}"
    marks = [f"${i}" if postgres else "?" for i in range(1, len(params) + 1)]
    sql = (
        f"SELECT {', '.join(RECORD_COLUMNS)}, member_id = {marks[0]} AS mine "  # noqa: S608
        f'FROM "{Record._meta.db_table}" '
        f"WHERE {where.format(*marks[1:])} ORDER BY external_key LIMIT {PAGE}"
    )
    return sql, params


async def _along_the_index(sql: str, params: list[Any]) -> list[Sequence[Any]]:
    """The page on PostgreSQL, planned without a sort. Where the statistics expect a few rows
    for the connection (a table not analyzed since a big sync), the planner would take every
    page as a bitmap scan of all the connection's remaining rows plus a sort: 108 ms a page
    instead of 0.9 ms on 100,000 records, quadratic in the member's records. Without a sort
    the only plan left is the index scan in key order."""
    async with in_transaction() as conn:
        await conn.execute_script("SET LOCAL enable_sort = off")
        rows: tuple[int, Sequence[Any]] = await conn.execute_query(sql, params)
    return list(rows[1])


@lru_cache(maxsize=64)
def _iso_cached(value: datetime | str | None) -> str | None:
    """`_iso` for a value many rows share (the records of one sync batch share `updated_at`)."""
    return _iso(value)


def _encode_records(
    rows: Sequence[Sequence[Any]], connection_id: str, open_body: Callable[[bytes, str], bytes]
) -> list[str]:
    """A page of rows as records.json holds them. One loop over the page with its names
    bound locally: per record this is the floor's work (open, decode, encode) plus the
    export's own (its ids, timestamps, the member check) and nothing else."""
    encode, decode, iso, iso_shared = _encode, _decode, _iso, _iso_cached
    page: list[str] = []
    append = page.append
    for row_id, kind, occurred_at, updated_at, sealed, _, mine in rows:
        if not mine:
            raise IntegrityError("A record does not belong to the member of its connection.")
        row_id = str(row_id)
        body = decode(open_body(sealed, row_id).decode())
        append(
            encode(
                {
                    "id": row_id,
                    "connection_id": connection_id,
                    "kind": kind,
                    "occurred_at": iso(occurred_at),
                    "updated_at": iso_shared(updated_at),
                    "counts": body.get("counts") or {},
                    "text": body.get("text"),
                    "title": body.get("title"),
                    "url": body.get("url"),
                    "network": body.get("network"),  # set by multi-network uploads (the archive)
                }
            )
        )
    return page


async def _scores(member_id: uuid.UUID, cipher: MemberCipher) -> AsyncIterator[dict[str, Any]]:
    async def page(last: Any) -> list[Score]:
        query = Score.filter(member_id=member_id)
        if last is not None:
            query = query.filter(id__gt=last.id)
        return await query.order_by("id").limit(PAGE)

    async for row in _pages(page):
        change = None
        if row.change_sealed is not None:
            change = cipher.open_json(
                row.change_sealed, table=scoring.TABLE, column="change_sealed", row=row.id
            )
        yield {
            "id": str(row.id),
            "scorer": row.scorer,
            "scorer_version": row.scorer_version,
            "value": row.value,
            "inputs_digest": row.inputs_digest,
            "computed_at": _iso(row.computed_at),
            "explanation": _explanation(
                cipher.open_json(
                    row.explanation_sealed,
                    table=scoring.TABLE,
                    column="explanation_sealed",
                    row=row.id,
                )
            ),
            "change": change,
        }


async def _scorer_consents(member_id: uuid.UUID) -> dict[str, Any]:
    current = await ScorerConsent.filter(member_id=member_id).order_by("scorer")
    history = await ScorerConsentEvent.filter(member_id=member_id).order_by("at")
    return {
        "current": [
            {
                "scorer": c.scorer,
                "enabled": c.enabled,
                "updated_at": _iso(c.updated_at),
                "last_run_at": _iso(c.last_run_at),
                "last_status": c.last_status,
            }
            for c in current
        ],
        "history": [
            {
                "scorer": e.scorer,
                "action": e.action,
                "scorer_version": e.scorer_version,
                "reads": [r for r in e.reads.split(",") if r],
                "at": _iso(e.at),
            }
            for e in history
        ],
    }


async def _grants(member_id: uuid.UUID) -> AsyncIterator[dict[str, Any]]:
    grants = await Grant.filter(member_id=member_id).order_by("created_at")
    apps = {a.id: a for a in await App.filter(id__in=list({g.app_id for g in grants}))}
    for grant in grants:
        app = apps.get(grant.app_id)
        events = await GrantEvent.filter(grant_id=grant.id).order_by("at")
        tokens = await OAuthToken.filter(grant_id=grant.id).order_by("created_at")
        yield {
            "id": str(grant.id),
            "app": {
                "id": str(grant.app_id),
                "name": app.name if app else None,
                "client_id": app.client_id if app else None,
                "homepage": app.homepage if app else None,
            },
            "subject": grant.subject,
            "scopes": list(grant.scopes),
            "levels": levels_of(grant.scopes),  # per score: exact, band or atleast:N
            "status": grant.status,
            "held": grant.held,
            "terms_version": grant.terms_version,
            "created_at": _iso(grant.created_at),
            "expires_at": _iso(grant.expires_at),
            "ended_at": _iso(grant.ended_at),
            "events": [
                {
                    "kind": e.kind,
                    "at": _iso(e.at),
                    "scopes": list(e.scopes),
                    "reason": e.reason,
                    "terms_version": e.terms_version,
                }
                for e in events
            ],
            "tokens": [
                {
                    "id": str(t.id),
                    "scopes": list(t.scopes),
                    "created_at": _iso(t.created_at),
                    "access_expires_at": _iso(t.access_expires_at),
                    "refresh_expires_at": _iso(t.refresh_expires_at),
                    "refresh_used_at": _iso(t.refresh_used_at),
                    "revoked_at": _iso(t.revoked_at),
                }
                for t in tokens
            ],
        }


async def _access_log(member_id: uuid.UUID) -> AsyncIterator[dict[str, Any]]:
    async def page(last: Any) -> list[AccessLogEntry]:
        # Along the (member_id, at) index; ties on `at` are broken by id.
        query = AccessLogEntry.filter(member_id=member_id)
        if last is not None:
            query = query.filter(Q(at__gt=last.at) | Q(at=last.at, id__gt=last.id))
        return await query.order_by("at", "id").limit(PAGE)

    async for row in _pages(page):
        yield {
            "id": str(row.id),
            "at": _iso(row.at),
            "app_id": str(row.app_id) if row.app_id else None,
            "app_name": row.app_name,
            "grant_id": str(row.grant_id) if row.grant_id else None,
            "personal_token_id": str(row.personal_token_id) if row.personal_token_id else None,
            "scope": row.scope,
            "resource": row.resource,
        }


async def _apps(member_id: uuid.UUID) -> AsyncIterator[dict[str, Any]]:
    for app in await App.filter(owner_id=member_id).order_by("created_at"):
        yield {
            "id": str(app.id),
            "client_id": app.client_id,
            "name": app.name,
            "homepage": app.homepage,
            "redirect_uris": list(app.redirect_uris),
            "webhook_url": app.webhook_url,
            "public": app.public,
            "created_at": _iso(app.created_at),
        }


# -- the archive ------------------------------------------------------------------------------


async def _votes(vault: Vault, member_id: uuid.UUID) -> AsyncIterator[dict[str, Any]]:
    """The member's own votes on the cooperative's proposals (ballots are not member-keyed
    rows: they are found through the links sealed under the member's key)."""
    for voted in await governance.list_own_votes(vault=vault, member_id=member_id):
        p = voted.proposal
        yield {
            "proposal_id": str(p.id),
            "kind": p.kind,
            "scorer": p.scorer,
            "version": p.version,
            "state": p.state,
            "outcome": p.outcome or None,
            "closes_at": _iso(p.closes_at),
            "choice": voted.vote.choice,
        }


def _readme(generated_at: datetime) -> bytes:
    text = resources.files("coop.portability").joinpath("export_readme.md").read_text()
    return text.replace("{generated_at}", generated_at.isoformat()).encode()


async def stream_export(
    *, vault: Vault, member_id: uuid.UUID, issuer: str = ""
) -> AsyncIterator[bytes]:
    """The export ZIP as a stream of chunks. Raises NotFoundError/KeyMissingError up front
    (before the first chunk) when the member or their key is gone. `issuer` names the
    cooperative in the signed consent receipts."""
    member = await Member.get(id=member_id)
    cipher = await vault.cipher_for(member_id)
    return _build(member, cipher, vault, issuer)


async def _build(
    member: Member, cipher: MemberCipher, vault: Vault, issuer: str
) -> AsyncIterator[bytes]:
    generated_at = utcnow()
    archive = ZipStream(compresslevel=DEFLATE_LEVEL)
    counter = _Counter()
    mid = member.id
    entries: list[tuple[str, AsyncIterator[bytes]]] = [
        ("README.md", _one_raw(_readme(generated_at))),
        (SCHEMA_NAME, _one_raw(schema_bytes())),
        ("profile.json", _one(await _profile(member, cipher))),
        ("sessions.json", _array(counter, "sessions.json", _sessions(mid, cipher))),
        ("personal_tokens.json", _array(counter, "personal_tokens.json", _personal_tokens(mid))),
        ("connections.json", _array(counter, "connections.json", _connections(mid, cipher))),
        ("records.json", _encoded_array(counter, "records.json", _records(mid, cipher))),
        ("scores.json", _array(counter, "scores.json", _scores(mid, cipher))),
        ("scorer_consents.json", _lazy_one(lambda: _scorer_consents(mid))),
        ("grants.json", _array(counter, "grants.json", _grants(mid))),
        (
            "consent_receipts.json",
            _array(
                counter,
                "consent_receipts.json",
                consent_receipts.signed_receipts(vault=vault, member_id=mid, issuer=issuer),
            ),
        ),
        ("access_log.json", _array(counter, "access_log.json", _access_log(mid))),
        ("apps.json", _array(counter, "apps.json", _apps(mid))),
        ("votes.json", _array(counter, "votes.json", _votes(vault, mid))),
    ]
    for name, pieces in entries:
        async for chunk in archive.entry(name, pieces):
            yield chunk
    names = [name for name, _ in entries]
    # One proof bundle per current score, each built and written before the next is read.
    async for scorer, bundle in bundles.current_bundles(cipher=cipher, member_id=mid):
        names.append(f"{BUNDLES}{scorer}.json")
        async for chunk in archive.entry(names[-1], _one(bundle)):
            yield chunk
    manifest = {
        "format": "coop-export",
        "version": FORMAT_VERSION,
        "generated_at": generated_at.isoformat(),
        "member_id": str(mid),
        "schema": SCHEMA_NAME,
        "counts": counter.files,
        "files": [*names, "manifest.json"],
    }
    async for chunk in archive.entry("manifest.json", _one(manifest)):
        yield chunk
    yield archive.close()


async def _one_raw(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _lazy_one(make: Callable[[], Awaitable[Any]]) -> AsyncIterator[bytes]:
    yield _dump(await make()) + b"\n"
