"""A distribution's content hash: the same wherever the same wheel is installed.

The hash covers the files a wheel puts under the site-packages root, each hashed with
sha256, and is computed the same way from an installed distribution and from the wheel
file itself, so an operator can pin the hash an author publishes:

1. Take the distribution's files with their paths relative to the site-packages root, in
   POSIX form (`pkg/mod.py`, `pkg-1.0.dist-info/METADATA`). In a wheel, files under
   `NAME.data/purelib/` and `NAME.data/platlib/` count at the path below that folder.
2. Leave out what the installer writes or rewrites (`RECORD`, `INSTALLER`, `REQUESTED`,
   `direct_url.json` in the `.dist-info` folder), compiled bytecode (`__pycache__/`,
   `*.pyc`) and anything outside the site-packages root (console scripts in `bin/` carry
   the install path in their shebang; other `NAME.data/` folders).
3. Write one line per file, sorted by path (as UTF-8 bytes): the file's sha256 in lowercase
   hex, two spaces, the path, a newline (the format `sha256sum` prints).
4. The content hash is the sha256 (lowercase hex) of those lines.

An editable install (`pip install -e`) keeps its code outside site-packages: it has no
content hash ("").
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path, PurePosixPath

INSTALLER_FILES = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})
SITE_DATA = ("purelib", "platlib")
CHUNK = 1024 * 1024


def _counted(path: PurePosixPath) -> bool:
    parts = path.parts
    if not parts or path.is_absolute() or ".." in parts:
        return False  # outside the site-packages root
    if "__pycache__" in parts or path.suffix == ".pyc":
        return False
    in_dist_info = len(parts) == 2 and parts[0].endswith(".dist-info")
    return not (in_dist_info and parts[1] in INSTALLER_FILES)


def combine(digests: Iterable[tuple[str, str]]) -> str:
    """The content hash of (path, file sha256 hex) pairs: step 3 and 4 above."""
    listing = b"".join(
        f"{digest}  {path}\n".encode()
        for path, digest in sorted(digests, key=lambda item: item[0].encode())
    )
    return hashlib.sha256(listing).hexdigest()


def _file_sha256(chunks: Iterator[bytes]) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def _read(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def is_editable(dist: metadata.Distribution) -> bool:
    try:
        info = json.loads(dist.read_text("direct_url.json") or "{}")
    except ValueError:
        return False
    return bool(isinstance(info, dict) and (info.get("dir_info") or {}).get("editable"))


def installed_hash(dist: metadata.Distribution) -> str:
    """The content hash of an installed distribution ("" for an editable install or one
    without a file list). A listed file that is missing makes the hash differ too."""
    if is_editable(dist) or dist.files is None:
        return ""
    pairs = []
    for file in dist.files:
        path = PurePosixPath(file.as_posix())
        if not _counted(path):
            continue
        located = Path(str(dist.locate_file(file)))
        digest = _file_sha256(_read(located)) if located.is_file() else "missing"
        pairs.append((str(path), digest))
    return combine(pairs)


def _site_path(name: str) -> PurePosixPath | None:
    """Where a wheel member lands relative to the site-packages root (None: elsewhere)."""
    path = PurePosixPath(name)
    if path.parts and path.parts[0].endswith(".data"):
        if len(path.parts) < 3 or path.parts[1] not in SITE_DATA:
            return None
        path = PurePosixPath(*path.parts[2:])
    return path


def wheel_hash(wheel: Path) -> str:
    """The content hash of a wheel file: what `installed_hash` gives once it is installed."""
    pairs = []
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            path = _site_path(info.filename)
            if path is None or not _counted(path):
                continue
            with archive.open(info) as handle:
                digest = _file_sha256(iter(lambda: handle.read(CHUNK), b""))
            pairs.append((str(path), digest))
    return combine(pairs)
