"""The process-wide objects that transports hand to services (built once in coop.app)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import HTTPConnection

from coop.config import Settings
from coop.vault import Vault


@dataclass
class Runtime:
    """What a request handler may use besides the database: settings, the vault, and the
    long-lived components later layers attach (plugin registry, job runner, …) in `extras`."""

    settings: Settings
    vault: Vault
    extras: dict[str, Any] = field(default_factory=dict)


def get_runtime(conn: HTTPConnection) -> Runtime:
    runtime: Runtime = conn.app.state.runtime
    return runtime
