"""What an app promises: a purpose (for the app, or per score), how long it keeps what it
reads, and a privacy/terms URL. Declared at registration and changed as new versions."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from coop.errors import InvalidClientMetadataError
from coop.types import utcnow

from .models import App, AppTerms

MAX_PURPOSE = 500
MAX_SCORE_PURPOSES = 50
MAX_RETENTION_DAYS = 3650
MAX_URL = 500
SCORER_NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}\Z")


@dataclass(frozen=True)
class Terms:
    """One version of an app's declarations, validated (or read back from an AppTerms row)."""

    purpose: str | None = None
    score_purposes: dict[str, str] = field(default_factory=dict)
    retention_days: int | None = None
    policy_uri: str | None = None
    version: int = 0

    @property
    def declared(self) -> bool:
        return bool(self.purpose or self.score_purposes or self.policy_uri) or (
            self.retention_days is not None
        )

    def same_words(self, other: Terms) -> bool:
        return (self.purpose, self.score_purposes, self.retention_days, self.policy_uri) == (
            other.purpose,
            other.score_purposes,
            other.retention_days,
            other.policy_uri,
        )

    def purpose_for(self, scope: str) -> str | None:
        """The purpose shown next to `scope`: the score's own, else the app's."""
        parts = scope.split(":")
        if parts[0] == "score" and len(parts) > 1 and parts[1] in self.score_purposes:
            return self.score_purposes[parts[1]]
        return self.purpose

    def retention_words(self) -> str:
        """How long the app keeps what it reads, in plain words."""
        if self.retention_days is None:
            return "The app has not said how long it keeps what it reads."
        if self.retention_days == 0:
            return "The app does not keep what it reads: it uses it and discards it."
        unit = "day" if self.retention_days == 1 else "days"
        return f"The app keeps what it reads for at most {self.retention_days} {unit}."

    def metadata(self) -> dict[str, Any]:
        """The RFC 7591-style client metadata fields (coop extensions plus `policy_uri`)."""
        out: dict[str, Any] = {}
        if self.purpose:
            out["purpose"] = self.purpose
        if self.score_purposes:
            out["score_purposes"] = dict(self.score_purposes)
        if self.retention_days is not None:
            out["retention_days"] = self.retention_days
        if self.policy_uri:
            out["policy_uri"] = self.policy_uri
        return out


NO_TERMS = Terms()


def _text(value: object, label: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidClientMetadataError(f"{label} must be text.")
    clean = " ".join(value.split())
    if len(clean) > MAX_PURPOSE:
        raise InvalidClientMetadataError(
            f"{label} is {len(clean)} characters long; at most {MAX_PURPOSE} are allowed."
        )
    return clean or None


def _score_purposes(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidClientMetadataError("score_purposes must map scorer names to text.")
    if len(value) > MAX_SCORE_PURPOSES:
        raise InvalidClientMetadataError(f"At most {MAX_SCORE_PURPOSES} score purposes.")
    out: dict[str, str] = {}
    for name, text in value.items():
        if not isinstance(name, str) or not SCORER_NAME.match(name):
            raise InvalidClientMetadataError(f"Not a scorer name: {str(name)[:64]!r}.")
        words = _text(text, f"The purpose for {name}")
        if words:
            out[name] = words
    return dict(sorted(out.items()))


def _retention(value: object) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidClientMetadataError("retention_days must be a whole number of days.")
    if not 0 <= value <= MAX_RETENTION_DAYS:
        raise InvalidClientMetadataError(
            f"retention_days must be between 0 and {MAX_RETENTION_DAYS}."
        )
    return value


def _policy_uri(value: object) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise InvalidClientMetadataError("policy_uri must be a URL.")
    uri = value.strip()
    try:
        parts = urlsplit(uri)
    except ValueError:
        parts = None
    if (
        parts is None
        or len(uri) > MAX_URL
        or parts.scheme not in {"http", "https"}
        or not parts.hostname
        or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in uri)
    ):
        raise InvalidClientMetadataError(
            f"policy_uri must be an absolute http(s) URL of at most {MAX_URL} characters."
        )
    return uri


def score_purposes_from_lines(lines: list[str]) -> dict[str, str]:
    """`name: text` lines (CLI flags, the /developer form) as a score_purposes mapping."""
    out: dict[str, str] = {}
    for line in lines:
        if not line.strip():
            continue
        name, sep, text = line.partition(":")
        if not sep or not name.strip():
            raise InvalidClientMetadataError(
                f"Write each score purpose as 'scorer: purpose', not {line.strip()[:40]!r}."
            )
        out[name.strip()] = text
    return out


def validate_terms(
    *,
    purpose: object = None,
    score_purposes: object = None,
    retention_days: object = None,
    policy_uri: object = None,
) -> Terms:
    """Declarations checked and normalised (whitespace collapsed); refusals are
    `invalid_client_metadata` (RFC 7591 §3.2.2) with a message saying what is wrong."""
    return Terms(
        purpose=_text(purpose, "The purpose"),
        score_purposes=_score_purposes(score_purposes),
        retention_days=_retention(retention_days),
        policy_uri=_policy_uri(policy_uri),
    )


def _from_row(row: AppTerms) -> Terms:
    return Terms(
        purpose=row.purpose,
        score_purposes=dict(row.score_purposes or {}),
        retention_days=row.retention_days,
        policy_uri=row.policy_uri,
        version=row.version,
    )


async def store_terms(app: App, terms: Terms) -> Terms:
    """Make `terms` the app's current version (inside the caller's transaction). Words equal
    to the current ones change nothing; any other change makes a new version, which every
    grant must agree to before the app reads again."""
    current = await get_terms(app_id=app.id, version=app.terms_version)
    if current.same_words(terms):
        return current
    version = app.terms_version + 1
    row = await AppTerms.create(
        id=uuid.uuid4(),
        app_id=app.id,
        version=version,
        purpose=terms.purpose,
        score_purposes=terms.score_purposes,
        retention_days=terms.retention_days,
        policy_uri=terms.policy_uri,
        created_at=utcnow(),
    )
    app.terms_version = version
    await App.filter(id=app.id).update(terms_version=version)
    return _from_row(row)


async def get_terms(*, app_id: uuid.UUID, version: int) -> Terms:
    """The words of one version (version 0, or a missing row: nothing declared)."""
    if version == 0:
        return NO_TERMS
    row = await AppTerms.get_or_none(app_id=app_id, version=version)
    return _from_row(row) if row is not None else Terms(version=version)


async def get_many_terms(*, keys: set[tuple[uuid.UUID, int]]) -> dict[tuple[uuid.UUID, int], Terms]:
    """Several (app id, version) pairs in one query (for the Apps page and exports)."""
    wanted = {k for k in keys if k[1] != 0}
    found: dict[tuple[uuid.UUID, int], Terms] = {k: NO_TERMS for k in keys if k[1] == 0}
    if wanted:
        rows = await AppTerms.filter(app_id__in=list({a for a, _ in wanted}))
        for row in rows:
            if (row.app_id, row.version) in wanted:
                found[(row.app_id, row.version)] = _from_row(row)
    return found
