"""The process-wide objects that transports hand to services (built once in coop.app)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from starlette.requests import HTTPConnection
from starlette.types import Receive, Scope, Send

from coop.config import Settings
from coop.consent.scopes import KnownScorers, ScorerBands
from coop.jobs.housekeeping import Housekeeping
from coop.jobs.scoring import ScoringFlow
from coop.jobs.sync import Jobs
from coop.vault import Vault


class Endpoint(Protocol):
    """An ASGI endpoint that holds resources until closed (the /graphql endpoint)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None: ...

    async def aclose(self) -> None: ...


@dataclass
class Runtime:
    """What a request handler may use besides the database: settings, the vault, and the
    long-lived components coop.app builds (the CLI's Runtime has settings and vault only)."""

    settings: Settings
    vault: Vault
    jobs: Jobs | None = None  # connectors' registry, sync engine, queue and scheduler
    scoring: ScoringFlow | None = None  # built on first use: coop.jobs.scoring.flow_for
    housekeeping: Housekeeping | None = None  # when this process runs the background work
    known_scorers: KnownScorers = None  # the offered scorer names (None: accept any)
    scorer_bands: ScorerBands = None  # the loaded scorers' band edges
    graphql: Endpoint | None = None  # built on first use: coop.api.routes


def get_runtime(conn: HTTPConnection) -> Runtime:
    runtime: Runtime = conn.app.state.runtime
    return runtime
