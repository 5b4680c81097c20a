"""Shared by the proof-bundle tests: a real plugin wheel installed into a plugin folder, a
member scored by it through the sandbox, and that member's export made by the real export
path."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path
from typing import Any

from coop.jobs.scoring import ScoringFlow
from coop.members import service as members
from coop.portability import export
from coop.scoring.sandbox import Sandbox, SandboxConfig
from coop.types import utcnow
from coop.vault import Vault
from tests.scoring.factories import add_records, posts
from tests.scoring.test_upgrade import distribution

COOP = str(Path(sys.executable).parent / "coop")


def build_wheel(root: Path, version: str, reads: tuple[str, ...], factor: float) -> Path:
    source = distribution(root / f"src-{uuid.uuid4().hex[:6]}", version, reads, factor)
    out = root / f"wheels-{uuid.uuid4().hex[:6]}"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
    )
    [wheel] = out.glob("coop_score_upgrade-*.whl")
    return wheel


async def scored_member(vault: Vault, site: Path) -> uuid.UUID:
    """A member with four posts, scored by `upgrade` from the plugin folder `site`."""
    member = await members.create_member(
        vault=vault, email=f"{uuid.uuid4().hex[:8]}@example.org", password="x" * 12
    )
    await add_records(vault, member.id, posts(utcnow(), 4))
    flow = ScoringFlow(vault=vault, runner=Sandbox(sandbox_config(site)))
    await flow.start()
    try:
        [outcome] = await flow.enable(member_id=member.id, scorer="upgrade")
        assert outcome.status == "stored"
    finally:
        await flow.close()
    return member.id


def sandbox_config(site: Path) -> SandboxConfig:
    return SandboxConfig(plugin_path=(str(site),), timeout_seconds=5.0, start_timeout=60.0)


async def export_zip(vault: Vault, member_id: uuid.UUID) -> bytes:
    out = bytearray()
    async for chunk in await export.stream_export(vault=vault, member_id=member_id):
        out.extend(chunk)
    return bytes(out)


def json_files(archive: bytes) -> dict[str, Any]:
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        return {n: json.loads(zf.read(n)) for n in zf.namelist() if n.endswith(".json")}


def coop_verify(path: Path, *, site: Path | None, data: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "COOP_DATA_DIR": str(data)}
    env["COOP_PLUGIN_PATH"] = str(site) if site else ""
    return subprocess.run(
        [COOP, "verify", str(path)], env=env, capture_output=True, text=True, timeout=180
    )
