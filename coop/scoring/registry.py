"""Scorer discovery from installed metadata only: nothing is imported here (PL-01).

Every `coop.scorers` entry point is listed with its distribution, version and the
distribution's content hash (coop.scoring.disthash: the same wherever the same wheel is
installed, so an updated or modified plugin is visible and a published hash can be pinned).
`COOP_PLUGINS` (Settings.plugins) restricts which may load: each item is `name`,
`name==version` or `name==version@sha256:<hex>`, where `name` is the scorer or distribution
name and the hash is the content hash (the sha256 of RECORD, which differs by install path,
is still accepted so that older pins keep working). Loading and contract checks happen later,
in the sandbox's template process.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from coop.scoring.disthash import installed_hash
from coop.scoring.spec import ENTRY_POINT_GROUP

log = logging.getLogger("coop.scoring")


@dataclass(frozen=True)
class PluginEntry:
    """One declared scorer, as read from metadata (before any import)."""

    name: str
    value: str
    dist: str
    dist_version: str
    record_sha256: str
    allowed: bool
    reason: str = ""
    location: str = ""  # the folder holding the distribution's metadata
    content_sha256: str = ""  # coop.scoring.disthash ("" for an editable install)

    def to_load(self) -> dict[str, str]:
        return {"name": self.name, "value": self.value, "dist": self.dist}


@dataclass(frozen=True)
class AllowRule:
    name: str
    version: str | None = None
    sha256: str | None = None


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_allowlist(items: Iterable[str]) -> list[AllowRule]:
    rules = []
    for item in items:
        name, _, rest = item.partition("==")
        version, _, digest = rest.partition("@sha256:")
        rules.append(AllowRule(normalise(name.strip()), version.strip() or None, digest or None))
    return rules


def record_hash(dist: metadata.Distribution) -> str:
    """sha256 of the distribution's RECORD (lists every installed file with its own hash),
    over its exact bytes, so `sha256sum .../RECORD` gives the value to pin."""
    folder = getattr(dist, "_path", None)  # PathDistribution: the .dist-info folder
    if isinstance(folder, Path) and (folder / "RECORD").is_file():
        return hashlib.sha256((folder / "RECORD").read_bytes()).hexdigest()
    text = dist.read_text("RECORD")
    return hashlib.sha256(text.encode()).hexdigest() if text else ""


def _verdict(
    name: str, dist: str, version: str, digests: tuple[str, str], rules: list[AllowRule] | None
) -> tuple[bool, str]:
    if not version:
        return False, "the distribution has no version"
    if rules is None:
        return True, ""
    for rule in rules:
        if rule.name not in (normalise(name), normalise(dist)):
            continue
        if rule.version and rule.version != version:
            return False, f"version {version} is not the allowed {rule.version}"
        if rule.sha256 and rule.sha256 not in {d for d in digests if d}:
            return False, "the installed files differ from the allowed hash"
        return True, ""
    return False, "not listed in COOP_PLUGINS"


def _distributions(paths: Sequence[str]) -> Iterable[metadata.Distribution]:
    return metadata.distributions(path=[*paths, *sys.path])


def discover(*, allow: Sequence[str] | None, paths: Sequence[str] = ()) -> list[PluginEntry]:
    """Every installed scorer entry point, with whether COOP_PLUGINS lets it load."""
    rules = None if allow is None else parse_allowlist(allow)
    seen_dists: set[str] = set()
    seen_names: set[str] = set()
    entries: list[PluginEntry] = []
    for dist in _distributions(paths):
        dist_name = dist.metadata["Name"] or ""
        key = normalise(dist_name)
        if key in seen_dists:  # shadowed by an earlier path entry, as import would do
            continue
        seen_dists.add(key)
        declared = list(dist.entry_points.select(group=ENTRY_POINT_GROUP))
        if not declared:
            continue
        # Once per distribution (hashing reads its files), only for those with scorers.
        version = dist.version or ""
        digest, content = record_hash(dist), installed_hash(dist)
        for ep in declared:
            allowed, reason = _verdict(ep.name, dist_name, version, (content, digest), rules)
            if ep.name in seen_names:
                allowed, reason = False, "another distribution already provides this name"
            seen_names.add(ep.name)
            if not allowed:
                log.warning("scorer plugin refused", extra={"plugin": ep.name, "why": reason})
            folder = getattr(dist, "_path", None)
            location = str(folder.parent) if isinstance(folder, Path) else ""
            entries.append(
                PluginEntry(
                    ep.name,
                    ep.value,
                    dist_name,
                    version,
                    digest,
                    allowed,
                    reason,
                    location,
                    content,
                )
            )
    return sorted(entries, key=lambda e: e.name)


def find_distribution(name: str, *, paths: Sequence[str] = ()) -> metadata.Distribution | None:
    """The installed distribution named `name`, or the one providing the scorer `name`."""
    key = normalise(name)
    for dist in _distributions(paths):
        if normalise(dist.metadata["Name"] or "") == key:
            return dist
    for dist in _distributions(paths):
        if any(ep.name == name for ep in dist.entry_points.select(group=ENTRY_POINT_GROUP)):
            return dist
    return None
