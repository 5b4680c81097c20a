"""Settings of the scorer sandbox: limits, the allow-list, what the reduced view must never
show, and the template's configuration (read from the environment by coop.config; the
names in docs/plugins/reference.md)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coop.config import Settings
from coop.scoring.lockdown import SCRATCH_DIRS
from coop.scoring.registry import PluginEntry

# In bubblewrap's view /tmp is read-only (a venv or plugin path may live there): each child
# gets its private scratch tmpfs on these instead.
VIEW_SCRATCH = ("/var/tmp", "/dev/shm")  # noqa: S108


@dataclass(frozen=True)
class SandboxConfig:
    """Limits and options for scorer children (env names in docs/plugins/reference.md)."""

    allow: tuple[str, ...] | None = None
    plugin_path: tuple[str, ...] = ()
    timeout_seconds: float = 10.0
    memory_bytes: int = 512 * 1024 * 1024
    cpu_seconds: int = 5
    fsize_bytes: int = 16 * 1024 * 1024
    nofile: int = 32
    nproc: int = 1
    # Children run as uid/gid uid..uid+id_slots-1 (gid likewise), one each: no host account
    # should use these ids (docs/plugins/isolation.md).
    uid: int = 2_100_000_000
    gid: int = 2_100_000_000
    id_slots: int = 65536
    require_isolation: bool = True
    parallel: int = 2
    prefork: int = 2
    hide: tuple[str, ...] = ()
    # Never bound into the reduced view, nor any folder holding them (the data dir, the
    # SQLite file's folder).
    forbid: tuple[str, ...] = ()
    start_timeout: float = 60.0
    # "auto": bubblewrap when the server runs as root and bwrap is installed; "off": never
    # (then scorers are refused unless require_isolation is off). Tests pin it.
    view: str = "auto"

    @classmethod
    def from_settings(cls, settings: Settings) -> SandboxConfig:
        return cls(
            allow=settings.plugins,
            plugin_path=settings.plugin_path,
            timeout_seconds=settings.scorer_timeout,
            memory_bytes=settings.scorer_memory_mb * 1024 * 1024,
            cpu_seconds=settings.scorer_cpu_seconds,
            parallel=settings.scorer_parallel,
            require_isolation=settings.require_isolation,
            hide=_hideable(settings.data_dir),
            forbid=_forbidden(settings),
        )

    def plugin_dirs(self, entries: Sequence[PluginEntry]) -> list[str]:
        """The configured plugin path, then where each allowed distribution was found."""
        found = [*self.plugin_path, *(e.location for e in entries if e.allowed)]
        return list(dict.fromkeys(p for p in found if p))

    def template_config(self, entries: Sequence[PluginEntry], *, view: bool) -> dict[str, Any]:
        return {
            "entry_points": [e.to_load() for e in entries if e.allowed],
            # The template runs with -I (no PYTHONPATH): tell it where each allowed
            # distribution was found, after the configured plugin path.
            "paths": self.plugin_dirs(entries),
            "limits": {
                "memory_bytes": self.memory_bytes,
                "cpu_seconds": self.cpu_seconds,
                "fsize_bytes": self.fsize_bytes,
                "nofile": self.nofile,
                "nproc": self.nproc,
            },
            "uid": self.uid,
            "gid": self.gid,
            "id_slots": self.id_slots,
            "require_isolation": self.require_isolation,
            "prefork": self.prefork,
            "hide": list(self.hide),
            # In bubblewrap's view the data dir is not there at all, and /tmp is read-only.
            "scratch": list(VIEW_SCRATCH if view else SCRATCH_DIRS),
            "view": view,
        }


def _forbidden(settings: Settings) -> tuple[str, ...]:
    found = [settings.data_dir]
    if settings.is_sqlite:
        db = settings.database_url.removeprefix("sqlite://").split("?", 1)[0]
        if db and db != ":memory:":
            found.append(Path(db).parent)
    return tuple(str(p.resolve()) for p in found)


def _hideable(data_dir: Path) -> tuple[str, ...]:
    """The data dir, unless hiding it would also hide Python or coop (a dev's `COOP_DATA_DIR=.`)."""
    path = data_dir.resolve()
    needed = [Path(sys.prefix).resolve(), Path(__file__).resolve()]
    return () if any(p.is_relative_to(path) for p in needed) else (str(path),)
