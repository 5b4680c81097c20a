"""The connector registry: connectors load only through the `coop.connectors` entry points.

Built-in connectors are registered the same way as third-party ones (see pyproject.toml).
A connector that fails to import, instantiate or validate is skipped and reported in
`Registry.broken`; it never stops the others or the server.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from coop.connectors import spec
from coop.errors import NotFoundError

log = logging.getLogger("coop.connectors.registry")

GROUP = "coop.connectors"
NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
AUTH_METHODS = ("oauth2", "url", "upload", "app_password")


@dataclass(frozen=True)
class BrokenConnector:
    """An entry point that could not be loaded, and why (no traceback: it is shown to admins)."""

    name: str
    reason: str


class InvalidConnector(Exception):
    """The object an entry point names does not meet the contract."""


def validate(connector: Any) -> None:
    """Raise InvalidConnector unless `connector` meets the spec.Connector contract."""
    version = getattr(connector, "api_version", None)
    if version != spec.API_VERSION:
        raise InvalidConnector(f"api_version {version!r}, coop speaks {spec.API_VERSION}")
    name = getattr(connector, "name", None)
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidConnector("name must match [a-z][a-z0-9_-]*")
    for attr in ("title", "description"):
        if not isinstance(getattr(connector, attr, None), str):
            raise InvalidConnector(f"{attr} must be a string")
    reads = getattr(connector, "reads", None)
    if not isinstance(reads, tuple) or not reads or any(k not in spec.KINDS for k in reads):
        raise InvalidConnector(f"reads must be a non-empty tuple of {sorted(spec.KINDS)}")
    never = getattr(connector, "never_reads", None)
    if not isinstance(never, tuple) or not all(isinstance(n, str) for n in never):
        raise InvalidConnector("never_reads must be a tuple of strings")
    if getattr(connector, "auth", None) not in AUTH_METHODS:
        raise InvalidConnector(f"auth must be one of {AUTH_METHODS}")
    if not callable(getattr(connector, "sync", None)):
        raise InvalidConnector("sync must be callable")


class Registry:
    """The connectors that loaded, by name, and the ones that did not."""

    def __init__(
        self, connectors: Mapping[str, spec.Connector], broken: Iterable[BrokenConnector] = ()
    ) -> None:
        self._connectors = dict(connectors)
        self.broken = tuple(broken)

    @classmethod
    def load(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        points: Iterable[EntryPoint] | None = None,
        allowed: Iterable[str] | None = None,
    ) -> Registry:
        """Load every entry point of the group (or `points`, for tests).

        `allowed` (COOP_PLUGINS) names the plugins that may load; None allows all. Entry points
        left out are not imported at all."""
        found = entry_points(group=GROUP) if points is None else points
        permitted = None if allowed is None else set(allowed)
        loaded: dict[str, spec.Connector] = {}
        broken: list[BrokenConnector] = []
        for point in sorted(found, key=lambda p: p.name):
            if permitted is not None and point.name not in permitted:
                log.info("connector %s not loaded: not in COOP_PLUGINS", point.name)
                continue
            try:
                connector = _instantiate(point, env or {})
                if connector.name != point.name:
                    raise InvalidConnector(f"entry point name differs from name {connector.name!r}")
                if connector.name in loaded:
                    raise InvalidConnector("another connector already uses this name")
            except Exception as exc:  # a broken plugin is reported, never fatal
                reason = f"{type(exc).__name__}: {exc}"[:300]
                log.warning("connector %s skipped: %s", point.name, reason)
                broken.append(BrokenConnector(point.name, reason))
                continue
            loaded[connector.name] = connector
        return cls(loaded, broken)

    def get(self, name: str) -> spec.Connector:
        try:
            return self._connectors[name]
        except KeyError:
            raise NotFoundError("There is no such connector.", code="unknown_connector") from None

    def find(self, name: str) -> spec.Connector | None:
        return self._connectors.get(name)

    def all(self) -> list[spec.Connector]:
        return [self._connectors[n] for n in sorted(self._connectors)]

    def names(self) -> list[str]:
        return sorted(self._connectors)


def _instantiate(point: EntryPoint, env: Mapping[str, str]) -> spec.Connector:
    target = point.load()
    connector = target() if isinstance(target, type) else target
    validate(connector)
    configure = getattr(connector, "configure", None)
    if callable(configure):
        configure(env)
    result: spec.Connector = connector
    return result


__all__ = ["GROUP", "BrokenConnector", "InvalidConnector", "Registry", "validate"]
