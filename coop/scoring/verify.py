"""`coop verify PATH`: re-run proof bundles (coop.scoring.proofs) with the locally installed
scorers, in the sandbox, and say for each score whether it reproduced.

PATH is one bundle (JSON) or a member's export ZIP (every `bundles/*.json` in it). Reading is
bounded like an upload: at most MAX_ENTRIES members in the ZIP, MAX_BUNDLES bundles, each
bundle at most MAX_BUNDLE_BYTES and all of them MAX_TOTAL_BYTES, counted as really
decompressed (a forged size in the ZIP's headers cannot lie past it). Every bundle is read
and checked before the first run, so bad input is refused (InvalidInputError) with nothing
run. Needs no database.
"""

from __future__ import annotations

import json
import math
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from coop.errors import InvalidInputError, ScorerError
from coop.scoring import proofs
from coop.scoring.causes import EPSILON
from coop.scoring.inputs import Distribution
from coop.scoring.sandbox import Sandbox, SandboxConfig

BUNDLES = "bundles/"
MAX_ENTRIES = 10_000
MAX_BUNDLES = 1_000
MAX_BUNDLE_BYTES = 64 * 1024 * 1024
MAX_TOTAL_BYTES = 256 * 1024 * 1024
CHUNK = 64 * 1024

REPRODUCED, DIFFERS, MISSING, HASH_DIFFERS = "reproduced", "differs", "missing", "hash_differs"


@dataclass(frozen=True)
class Verdict:
    scorer: str
    status: str  # reproduced | differs | missing | hash_differs
    line: str

    @property
    def reproduced(self) -> bool:
        return self.status == REPRODUCED


# -- reading --------------------------------------------------------------------------------


def _bounded(stream: IO[bytes], limit: int, name: str) -> bytes:
    data = bytearray()
    while chunk := stream.read(CHUNK):
        data += chunk
        if len(data) > limit:
            raise InvalidInputError(f"{name} is larger than {limit // (1024 * 1024)} MiB")
    return bytes(data)


def _parse(raw: bytes, name: str) -> proofs.Bundle:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInputError(f"{name} is not JSON") from None
    try:
        return proofs.parse(data)
    except proofs.BundleError as exc:
        raise InvalidInputError(f"{name}: {exc}") from None


def _from_zip(path: Path) -> list[tuple[str, proofs.Bundle]]:
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_ENTRIES:
                raise InvalidInputError(f"{path} has more than {MAX_ENTRIES} files")
            wanted = [
                i for i in infos if i.filename.startswith(BUNDLES) and i.filename.endswith(".json")
            ]
            if len(wanted) > MAX_BUNDLES:
                raise InvalidInputError(f"{path} has more than {MAX_BUNDLES} bundles")
            found, left = [], MAX_TOTAL_BYTES
            for info in wanted:
                with archive.open(info) as stream:
                    raw = _bounded(stream, min(MAX_BUNDLE_BYTES, left), info.filename)
                left -= len(raw)
                found.append((info.filename, _parse(raw, info.filename)))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError):
        raise InvalidInputError(f"{path} is not a readable ZIP") from None
    if not found:
        raise InvalidInputError(f"{path} holds no proof bundles ({BUNDLES}*.json)")
    return found


def load(path: Path) -> list[tuple[str, proofs.Bundle]]:
    """(name, bundle) for every bundle in PATH; InvalidInputError for anything else."""
    try:
        if not path.is_file():
            raise InvalidInputError(f"{path} is not a file")
        if zipfile.is_zipfile(path):
            return _from_zip(path)
        with path.open("rb") as stream:
            raw = _bounded(stream, MAX_BUNDLE_BYTES, str(path))
    except OSError as exc:
        raise InvalidInputError(f"{path} cannot be read: {exc.strerror or exc}") from None
    return [(path.name, _parse(raw, str(path)))]


# -- checking -------------------------------------------------------------------------------


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float | int) and isinstance(b, float | int):
        return math.isclose(a, b, rel_tol=0.0, abs_tol=EPSILON)
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _describe(dist: Distribution | None) -> str:
    if dist is None:
        return "no distribution recorded"
    digest = dist.sha256[:12] + "…" if dist.sha256 else "no content hash (editable install)"
    return f"{dist.name} {dist.version} sha256 {digest}"


def _identity(bundle: proofs.Bundle, sandbox: Sandbox) -> Verdict | None:
    """Why this bundle cannot be re-run as it was computed (None: it can)."""
    name = bundle.scorer
    status = next((p for p in sandbox.plugins if p.entry.name == name), None)
    if status is None or status.status != "loaded":
        why = "not installed" if status is None else f"{status.status}: {status.reason}"
        return Verdict(name, MISSING, f"{name}: scorer missing ({why})")
    installed = sandbox.distribution(name)
    pinned = bundle.distribution
    hashed = pinned is not None and bool(pinned.sha256)
    if pinned is not None and hashed and (installed is None or installed.sha256 != pinned.sha256):
        return Verdict(
            name,
            HASH_DIFFERS,
            f"{name}: hash differs: bundle {pinned.name} {pinned.version} sha256 "
            f"{pinned.sha256}, installed {_describe(installed)}",
        )
    version = sandbox.meta(name).version
    if version != bundle.scorer_version:
        return Verdict(
            name,
            HASH_DIFFERS,
            f"{name}: version differs: bundle {bundle.scorer_version}, installed {version}",
        )
    return None


async def _rerun(bundle: proofs.Bundle, sandbox: Sandbox) -> Verdict:
    name, expected = bundle.scorer, bundle.result
    try:
        result = await sandbox.run(
            scorer=name, records=list(bundle.inputs.records), now=bundle.inputs.now
        )
    except ScorerError as exc:
        line = f"{name}: differs: bundle {expected['value']}, re-run failed ({exc.code})"
        return Verdict(name, DIFFERS, line)
    got = proofs.checked_result(result)
    if not _close(got["value"], expected["value"]):
        line = f"{name}: differs: bundle {expected['value']}, re-run {got['value']}"
        return Verdict(name, DIFFERS, line)
    parts = [
        k for k in ("contributions", "reasons", "breakdown") if not _close(got[k], expected[k])
    ]
    if parts:
        line = f"{name}: differs: value {got['value']} in both, but the {', '.join(parts)} differ"
        return Verdict(name, DIFFERS, line)
    note = (
        ""
        if bundle.distribution and bundle.distribution.sha256
        else " (version only: the bundle has no content hash)"
    )
    stale = " [stale: not the member's current version]" if bundle.stale else ""
    line = f"{name}: reproduced {got['value']} with {bundle.scorer_version}{note}{stale}"
    return Verdict(name, REPRODUCED, line)


async def verify(
    config: SandboxConfig, bundles: Sequence[tuple[str, proofs.Bundle]]
) -> list[Verdict]:
    """One verdict per bundle, in order, from one sandbox."""
    sandbox = Sandbox(config)
    try:
        await sandbox.start()
        verdicts = []
        for _, bundle in bundles:
            verdict = _identity(bundle, sandbox)
            verdicts.append(verdict or await _rerun(bundle, sandbox))
        return verdicts
    finally:
        await sandbox.close()
