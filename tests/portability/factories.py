"""Factories: a member with data in every domain, marked with unique plaintext canaries."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from tortoise.transactions import in_transaction

from coop.apps import service as apps
from coop.config import Settings
from coop.connectors import spec, store
from coop.connectors.models import Connection, Record, SyncRun
from coop.consent import accesslog, grants, personal, tokens
from coop.members import service as members
from coop.members import sessions
from coop.scoring.models import Score, ScorerConsent, ScorerConsentEvent
from coop.types import utcnow
from coop.vault import Vault

PASSWORD = "correct horse battery staple"


@dataclass
class Person:
    member_id: uuid.UUID
    email: str
    canary: str
    session_token: str
    access_tokens: list[str] = field(default_factory=list)
    refresh_tokens: list[str] = field(default_factory=list)
    personal_token: str = ""
    app_ids: list[uuid.UUID] = field(default_factory=list)
    records: int = 0


async def make_app(
    vault: Vault, name: str, webhook_url: str | None = None
) -> tuple[uuid.UUID, str]:
    """A confidential app: its id and client secret."""
    registered = await make_webhook_app(vault, name, webhook_url)
    assert registered.client_secret is not None
    return registered.app.id, registered.client_secret


async def make_webhook_app(
    vault: Vault, name: str, webhook_url: str | None, *, public: bool = False
) -> apps.RegisteredApp:
    """An app as registered, with the secrets shown once (the webhook secret among them)."""
    return await apps.create_app(
        name=name,
        redirect_uris=["https://app.example/cb"],
        webhook_url=webhook_url,
        public=public,
        vault=vault,
    )


async def make_person(
    vault: Vault,
    settings: Settings,
    *,
    records: int = 5,
    app_ids: list[uuid.UUID] | None = None,
    connectors: tuple[str, ...] = ("feed", "mastodon"),
) -> Person:
    canary = "canary-" + secrets.token_hex(8)
    email = f"{canary}@example.org"
    member = await members.create_member(vault=vault, email=email, password=PASSWORD)
    await members.update_handle(vault=vault, member=member, handle=f"h-{canary}")
    _, session_token = await sessions.start(
        vault=vault, settings=settings, member=member, user_agent=f"Firefox {canary}"
    )
    person = Person(member.id, email, canary, session_token)
    cipher = await vault.cipher_for(member.id)
    for connector in connectors:
        connection_id = uuid.uuid4()
        await Connection.create(
            id=connection_id,
            member_id=member.id,
            connector=connector,
            config_sealed=store.seal_field(
                cipher, connection_id, "config_sealed", {"url": f"https://{canary}.example/feed"}
            ),
            credentials_sealed=store.seal_field(
                cipher, connection_id, "credentials_sealed", {"access_token": f"up-{canary}"}
            ),
            created_at=utcnow(),
        )
        await SyncRun.create(id=uuid.uuid4(), connection_id=connection_id, started_at=utcnow())
        await add_records(vault, member.id, connection_id, canary, records)
        person.records += records
    for app_id in app_ids or []:
        await grant_app(person, app_id)
    for scorer in ("reach", "cadence"):
        await add_scores(vault, member.id, scorer, canary, versions=2)
    created = await personal.create_personal_token(
        member_id=member.id, name=f"pat {canary}", scopes=["profile"], lifetime="30d"
    )
    person.personal_token = created.token
    return person


async def add_records(
    vault: Vault, member_id: uuid.UUID, connection_id: uuid.UUID, canary: str, n: int
) -> None:
    cipher = await vault.cipher_for(member_id)
    now = utcnow()
    rows = []
    for i in range(n):
        key = store.record_key(vault, connection_id, f"{canary}-{i}")
        row_id = store.record_id(connection_id, key)
        record = spec.Record(
            kind=spec.POST,
            external_id=f"{canary}-{i}",
            occurred_at=now - timedelta(minutes=i),
            counts={"likes": i},
            text=f"post {i} by {canary}",
            title=f"title {canary}",
            url=f"https://{canary}.example/{i}",
        )
        rows.append(
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
    for start in range(0, len(rows), 500):
        await Record.bulk_create(rows[start : start + 500])


async def grant_app(person: Person, app_id: uuid.UUID) -> None:
    async with in_transaction():
        grant = await grants.create_grant(
            member_id=person.member_id, app_id=app_id, scopes=["profile"], lifetime="30d"
        )
    from coop.apps.models import App

    app = await App.get(id=app_id)
    issued = await tokens._issue(grant, app.client_id, ["profile"], uuid.uuid4())
    person.access_tokens.append(issued.access_token)
    if issued.refresh_token:
        person.refresh_tokens.append(issued.refresh_token)
    await accesslog.record(
        member_id=person.member_id,
        scope="profile",
        resource=f"profile:{person.canary}",
        app_name=app.name,
        grant_id=grant.id,
        app_id=app_id,
    )
    person.app_ids.append(app_id)


async def add_scores(
    vault: Vault, member_id: uuid.UUID, scorer: str, canary: str, *, versions: int
) -> None:
    cipher = await vault.cipher_for(member_id)
    now = utcnow()
    await ScorerConsent.create(
        id=uuid.uuid4(), member_id=member_id, scorer=scorer, enabled=True, updated_at=now
    )
    await ScorerConsentEvent.create(
        id=uuid.uuid4(),
        member_id=member_id,
        scorer=scorer,
        action="enabled",
        scorer_version="1.0",
        reads="post",
        at=now,
    )
    for v in range(versions):
        score_id = uuid.uuid4()
        explanation = {
            "reasons": [f"{scorer} reason {canary}"],
            "contributions": [],
            "breakdown": {},
            "input_refs": [],
        }
        await Score.create(
            id=score_id,
            member_id=member_id,
            scorer=scorer,
            scorer_version="1.0",
            value=float(v),
            inputs_digest=f"digest-{v}",
            computed_at=now,
            explanation_sealed=cipher.seal_json(
                explanation, table="score", column="explanation_sealed", row=score_id
            ),
        )
