"""`coop plugins new` and `coop plugins list`: a scaffolded plugin, pip-installed into the
venv, appears and scores a member through the sandbox without touching coop's code."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from coop.scoring.sandbox import Sandbox, SandboxConfig
from coop.testing import NOW, post

pytestmark = pytest.mark.timeout(180)

COOP = str(Path(sys.executable).parent / "coop")


def coop(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "COOP_DATA_DIR": str(cwd / "var"), "LANG": "C.UTF-8"}
    return subprocess.run(
        [COOP, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def scaffolded(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    name = f"demo_{uuid.uuid4().hex[:6]}"
    made = coop("plugins", "new", name, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    root = tmp_path / f"coop-score-{name.replace('_', '-')}"
    yield name, root
    subprocess.run(
        [sys.executable, "-m", "pip", "uninstall", "-y", "-q", root.name],
        capture_output=True,
        check=False,
    )


def test_bad_plugin_names_exit_2_with_one_line(tmp_path: Path) -> None:
    result = coop("plugins", "new", "Not A Name", cwd=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())


def test_existing_folder_is_not_overwritten(tmp_path: Path) -> None:
    assert coop("plugins", "new", "twice", cwd=tmp_path).returncode == 0
    again = coop("plugins", "new", "twice", cwd=tmp_path)
    assert again.returncode == 2
    assert "already exists" in again.stderr


@pytest.fixture
def installed(scaffolded: tuple[str, Path]) -> tuple[str, Path]:
    """The scaffold is pip-installed (uninstalled at teardown), then its own tests pass,
    including the run in the server's sandbox and the entry point check."""
    name, root = scaffolded
    root.chmod(0o755)  # imported by the sandbox's unprivileged uid
    root.parent.chmod(0o755)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "-e", str(root)],
        check=True,
        capture_output=True,
        timeout=170,
    )
    tests = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            str(root / "tests"),
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert tests.returncode == 0, tests.stdout
    assert "5 passed" in tests.stdout, tests.stdout  # the sandbox run was not skipped
    assert "skipped" not in tests.stdout
    return name, root


async def test_a_new_plugin_installs_appears_and_scores_in_the_sandbox(
    installed: tuple[str, Path],
) -> None:
    name, root = installed
    listed = await asyncio.to_thread(coop, "plugins", "list", cwd=root.parent)
    assert listed.returncode == 0, listed.stderr
    line = next(line for line in listed.stdout.splitlines() if line.startswith(name))
    assert "loaded" in line
    box = Sandbox(SandboxConfig(timeout_seconds=5))
    try:
        records = [post(days_ago=d, now=NOW) for d in (1, 2, 3, 45)]
        result = await box.run(scorer=name, records=records, now=NOW + timedelta(hours=1))
    finally:
        await box.close()
    assert result.value == 3
    assert result.reasons == ("You published 3 posts in the last 30 days.",)
