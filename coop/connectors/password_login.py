"""Connecting a source with an account name and an app password (auth `app_password`).

The connector's `login` trades them for session tokens through the SSRF-guarded client; here
its contract errors become the member-facing errors of docs/errors.md. The password is used
for that one exchange and never stored or logged.
"""

from __future__ import annotations

import logging
import uuid

from coop.connectors import service, spec
from coop.connectors.outbound import Guard, OutboundClient
from coop.connectors.registry import Registry
from coop.errors import InvalidInputError, RateLimitedError, UpstreamAuthorizationError
from coop.vault import Vault

log = logging.getLogger("coop.connectors.password_login")


async def log_in(
    *, registry: Registry, guard: Guard, connector: str, account: str, password: str
) -> spec.Login:
    """The session the upstream granted, or a CoopError saying why not."""
    target = registry.get(connector)
    if target.auth != "app_password" or not isinstance(target, spec.PasswordLogin):
        raise InvalidInputError("This connector is not connected with a password.")
    try:
        async with OutboundClient(guard) as http:
            return await target.login(http, account, password)
    except spec.InvalidSourceError as exc:
        raise InvalidInputError(str(exc), code=exc.code) from None
    except spec.NeedsReauthorization:
        raise InvalidInputError(
            "The server refused that handle and app password. Check both and try again.",
            code="app_password_refused",
        ) from None
    except spec.Throttled as exc:
        throttled = RateLimitedError(
            "The server asks coop to wait before trying again; try again in a few minutes.",
            retry_after=int(exc.retry_after),
        )
        throttled.code = "upstream_throttled"
        raise throttled from None
    except spec.ConnectorError as exc:
        log.warning(
            "password login failed", extra={"connector": connector, "error": type(exc).__name__}
        )
        raise UpstreamAuthorizationError(
            "The server could not be reached or answered strangely; nothing was connected.",
            code="upstream_login_failed",
        ) from None


async def find_same_account(
    *, vault: Vault, registry: Registry, member_id: uuid.UUID, connector: str, login: spec.Login
) -> uuid.UUID | None:
    """The member's connection to the same account (same connector and handle), which this
    login renews instead of duplicating."""
    handle = login.config.get("handle")
    for view in await service.list_connections(vault=vault, registry=registry, member_id=member_id):
        if handle and view.connector == connector and view.label == handle:
            return view.id
    return None


__all__ = ["find_same_account", "log_in"]
