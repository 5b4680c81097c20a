"""The connector contract (entry-point group `coop.connectors`).

A connector knows how to read one kind of upstream source and turn it into normalized
`Record`s. It never touches the database or the vault: the sync engine stores, seals and
de-duplicates what it yields, and commits each batch together with its cursor.

People who are not members are never profiled: replies, mentions and followers arrive only as
counts on the member's own records, never as records about another person.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

API_VERSION = 1

AuthMethod = Literal["oauth2", "url", "upload", "app_password"]

# The record kinds coop knows. Scorers declare which of these they read.
POST = "post"  # something the member published: a status, a blog entry, a tweet
REPOSITORY = "repository"  # a code repository the member owns (stars, forks as counts)
ACTIVITY = "activity"  # a public action of the member (push, release, …) without content
AUDIENCE = "audience"  # a dated snapshot of audience size (followers as a count, no names)
KINDS: Mapping[str, str] = {
    POST: "posts you published, with their reaction counts",
    REPOSITORY: "your public repositories, with star and fork counts",
    ACTIVITY: "your public activity (dates and types, no content)",
    AUDIENCE: "how many followers you have (a number, never who they are)",
}


@dataclass(frozen=True)
class Record:
    """One normalized item. `external_id` is hashed (keyed) before storage, for de-duplication;
    everything else is sealed under the member's key."""

    kind: str
    external_id: str
    occurred_at: datetime
    counts: Mapping[str, int] = field(default_factory=dict)
    text: str | None = None
    title: str | None = None
    url: str | None = None
    # The network the item was published on (`mastodon`, `x`, `facebook`, …) when it is not
    # the connector's own name (archives that hold several networks' exports). Scorers see it.
    network: str | None = None


@dataclass(frozen=True)
class SyncBatch:
    """Records plus the cursor to resume after them. The engine commits both atomically."""

    records: list[Record]
    cursor: str | None


class ConnectorError(Exception):
    """Base of the errors a connector raises to steer the engine."""


class NeedsReauthorization(ConnectorError):
    """The upstream refused the credentials (401, invalid_grant): ask the member to reconnect."""


class Throttled(ConnectorError):
    """The upstream asked us to wait (429, exhausted rate limit)."""

    def __init__(self, retry_after: float, message: str = "rate limited") -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TransientUpstreamError(ConnectorError):
    """A failure worth retrying (5xx, timeout, connection reset)."""


class PermanentUpstreamError(ConnectorError):
    """A failure that retrying will not fix (malformed body, 404 on the source)."""


class InvalidSourceError(ConnectorError):
    """The member's input (URL, upload, instance) cannot be used; the message says why."""

    def __init__(self, message: str, code: str = "invalid_source") -> None:
        super().__init__(message)
        self.code = code


class HttpClient(Protocol):
    """The outbound HTTP client the engine hands a connector: SSRF-guarded, time-limited.

    Its methods mirror httpx.AsyncClient's (`get`, `post`, `request`, `stream`)."""

    async def request(self, method: str, url: str, **kwargs: Any) -> Any: ...
    async def get(self, url: str, **kwargs: Any) -> Any: ...
    async def post(self, url: str, **kwargs: Any) -> Any: ...


@dataclass
class SyncContext:
    """What a connector may use during one sync run.

    - `config`: the member's non-secret settings for this connection (feed URL, instance).
    - `credentials`: decrypted secrets (tokens); write changes through `save_credentials`,
      which commits them in their own transaction before returning (so a refreshed token is
      never lost if the run crashes afterwards).
    - `still_wanted()`: False once the member disconnected or deleted their account. The
      engine already refuses every `http` request and batch commit after that (raising
      inside the connector: let it propagate) and rules the run withdrawn even when the
      connector just stops; a connector doing slow work without requests may check it.
    """

    http: HttpClient
    config: Mapping[str, str]
    credentials: Mapping[str, str]
    now: datetime
    save_credentials: Callable[[Mapping[str, str]], Awaitable[None]]
    still_wanted: Callable[[], Awaitable[bool]]
    upload: bytes | None = None


@runtime_checkable
class Connector(Protocol):
    """A data source. Class attributes describe it to members before they connect."""

    api_version: ClassVar[int]
    name: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str]
    reads: ClassVar[tuple[str, ...]]  # record kinds (keys of KINDS)
    never_reads: ClassVar[tuple[str, ...]]  # plain-words promises, shown on the catalogue
    auth: ClassVar[AuthMethod]

    def sync(self, ctx: SyncContext, cursor: str | None) -> AsyncIterator[SyncBatch]:
        """Yield batches of records newer than `cursor`, each with the cursor after it."""
        ...


# -- optional hooks ----------------------------------------------------------------------------
# A connector may also define any of these; the registry and the engine look them up with
# `getattr`, so connectors without them stay valid.


@runtime_checkable
class Revocable(Protocol):
    """A connector that can give its upstream authorization back when the member disconnects.

    The engine calls `revoke` once, after the connection and its records are deleted, with a
    context holding the last credentials. Failures are logged (by code) and never block the
    deletion."""

    async def revoke(self, ctx: SyncContext) -> None: ...


@dataclass(frozen=True)
class Login:
    """What a password login gave: non-secret `config` (sealed; a `handle` key labels the
    connection) and the `credentials` (session tokens) to sync with. Never the password."""

    config: Mapping[str, str]
    credentials: Mapping[str, str]


@runtime_checkable
class PasswordLogin(Protocol):
    """A connector with auth `app_password`: the member types an account name and an app
    password they created upstream. `login` trades them for session tokens once, through the
    guarded `http`; coop never stores the password. It raises `InvalidSourceError` (the account
    cannot be found: shown to the member with its code), `NeedsReauthorization` (the upstream
    refused the password) or the other contract errors."""

    async def login(self, http: HttpClient, account: str, password: str) -> Login: ...


@runtime_checkable
class Configurable(Protocol):
    """A connector that reads operator settings (e.g. OAuth client ids). `configure` is called
    once at load time with the server's `COOP_*` environment variables."""

    def configure(self, env: Mapping[str, str]) -> None: ...


@runtime_checkable
class Availability(Protocol):
    """A connector that can be installed but not usable here (e.g. an OAuth connector whose
    operator has not registered coop upstream). `unavailable_reason` is None when members may
    connect it, else one sentence for members: the catalogue shows it instead of a Connect
    button."""

    @property
    def unavailable_reason(self) -> str | None: ...
