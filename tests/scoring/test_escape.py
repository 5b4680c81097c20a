"""Issue 12 part 1 (PL-01..PL-03): a hostile plugin tries every way out, from import time and
from score(): the keyring and data dir, the server's environment, PostgreSQL's Unix socket
and port, canary listeners (TCP, abstract and filesystem Unix sockets under /tmp and /run),
every socket under /run and /var/run, writes outside, forks. Each attempt is first shown to
work WITHOUT the sandbox (so these tests can fail), then shown to reach nothing in it."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from coop.config import Settings
from coop.errors import ScorerError
from coop.jobs.scoring import ScoringFlow
from coop.scoring import service
from coop.scoring.sandbox import Sandbox, SandboxConfig
from coop.testing import NOW, post, record
from coop.vault import Vault
from tests.conftest import ENGINES, create_pg_database, drop_pg_database
from tests.scoring.conftest import ROOT, CanaryListener, _visible_base
from tests.scoring.factories import add_records, make_member, posts

pytestmark = pytest.mark.timeout(120)

PG_SOCKET = "/var/run/postgresql/.s.PGSQL.5432"
# A real 32-byte key in coop's format (43 base64url characters), so coop can run on it.
PLANTED_SECRET = "cGxhbnRlZC1rZXktbWF0ZXJpYWwtbmV2ZXItbGVhayE"
PLANTED_KEY = f"planted-kek:{PLANTED_SECRET}"
# Anything shaped like a key coop uses: 32 bytes in base64url (43 chars), or 64 hex digits.
KEY_SHAPED = re.compile(r"[A-Za-z0-9_-]{43}|[0-9a-f]{64}")


@pytest.fixture
def planted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Path]]:
    """Key material where a careless deployment keeps it: a data dir with a readable keyring
    and database file, a canary file outside it, and the server's environment."""
    data = tmp_path / "var"
    data.mkdir()
    (data / "keyring.json").write_text(json.dumps({"active": "planted-kek", "keys": [PLANTED_KEY]}))
    (data / "coop.sqlite3").write_text(f"wrapped DEK under {PLANTED_KEY}")
    visible = _visible_base() / f"canary-{uuid.uuid4().hex[:8]}"
    visible.mkdir(parents=True)
    (visible / "canary.txt").write_text(PLANTED_KEY)
    for path in (tmp_path, data, visible):
        path.chmod(0o755)
    for path in (data / "keyring.json", data / "coop.sqlite3", visible / "canary.txt"):
        path.chmod(0o644)  # readable by anyone who can see it: only invisibility protects
    monkeypatch.setenv("COOP_MASTER_KEY", PLANTED_KEY)
    monkeypatch.setenv("COOP_SECRET_KEY", PLANTED_SECRET)
    monkeypatch.setenv("COOP_DATABASE_URL", "postgres://postgres@/coop?host=/var/run/postgresql")
    try:
        yield {"data": data, "canary": visible / "canary.txt"}
    finally:
        (visible / "canary.txt").unlink()
        visible.rmdir()


@pytest.fixture
def targets(
    hostile_site: Path, canaries: dict[str, CanaryListener], planted: dict[str, Path]
) -> Iterator[dict[str, list]]:  # type: ignore[type-arg]
    """targets.json for the hostile plugin (read at its import time and in score())."""
    tag = uuid.uuid4().hex[:8]
    data = planted["data"]
    found = {
        "read": [
            str(data / "keyring.json"),
            str(data / "coop.sqlite3"),
            str(data / "server.sqlite3"),  # the database escape_server.py uses on SQLite
            str(planted["canary"]),
        ],
        "list": [str(data), "/var/run/postgresql"],
        # Only PostgreSQL's and our own: the control run really connects (the sandboxed runs
        # also list every socket file they can see anywhere: "sockets").
        "unix": [PG_SOCKET, *(c.unix for c in canaries.values() if c.unix)],
        "tcp": [["127.0.0.1", canaries["tcp"].port], ["127.0.0.1", 5432]],
        "write": [str(data / "escaped"), f"/tmp/coop-escape-{tag}", f"/run/coop-escape-{tag}"],
        "marker": [f"/tmp/coop-marker-{tag}", str(data / "marker")],
    }
    path = hostile_site / "coop_score_hostile" / "targets.json"
    path.write_text(json.dumps(found))
    path.chmod(0o644)
    try:
        yield found
    finally:
        path.unlink()
        for leftover in [*found["write"], *found["marker"]]:
            Path(leftover).unlink(missing_ok=True)


def outcomes(texts: list[str] | tuple[str, ...]) -> list[str]:
    return [part.strip() for text in texts for part in text.split(" | ")]


def escapes(found: list[str]) -> list[str]:
    """The attempts that got something (`label:OK:...`)."""
    return [item for item in found if ":OK:" in item]


def assert_nothing_reached(
    found: list[str],
    canaries: dict[str, CanaryListener],
    targets: dict[str, list],  # type: ignore[type-arg]
) -> None:
    assert escapes(found) == []
    assert {name: c.accepted for name, c in canaries.items()} == dict.fromkeys(canaries, 0)
    assert [p for p in [*targets["write"], *targets["marker"]] if Path(p).exists()] == []
    assert not any(PLANTED_SECRET in item for item in found)


def by_label(found: list[str], prefix: str) -> dict[str, str]:
    out = {}
    for item in found:
        label, _, result = item.rpartition(":")
        if item.startswith(prefix) and ":OK:" not in item:
            out[label.removeprefix(prefix)] = result
    return out


@pytest.fixture
def escape_config(sandbox_config: SandboxConfig, planted: dict[str, Path]) -> SandboxConfig:
    return replace(sandbox_config, forbid=(str(planted["data"]),))


@pytest.fixture
async def box(escape_config: SandboxConfig, targets: dict[str, list]) -> AsyncIterator[Sandbox]:  # type: ignore[type-arg]
    """A sandbox started after targets.json was written (the plugins' import code reads it)."""
    sandbox = Sandbox(escape_config)
    try:
        await sandbox.start()
        yield sandbox
    finally:
        await sandbox.close()


def test_every_way_out_works_for_a_process_outside_the_sandbox(
    hostile_site: Path,
    canaries: dict[str, CanaryListener],
    targets: dict[str, list],  # type: ignore[type-arg]
) -> None:
    """The control: the same attack code, run the way the old template ran imports (the
    server's user and environment, no sandbox), gets the keys and reaches every canary."""
    code = "import json, coop_score_hostile.attacks as a; print(json.dumps(a.everything()))"
    env = {**os.environ, "PYTHONPATH": str(hostile_site)}
    run = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    got = escapes(json.loads(run.stdout))
    assert any(item.startswith(f"read {targets['read'][0]}:OK:") for item in got)
    assert any(PLANTED_SECRET in item for item in got)
    assert any(item.startswith(f"unix {PG_SOCKET}:OK:connected") for item in got)
    assert any(item.startswith("tcp 127.0.0.1:5432:OK:connected") for item in got)
    assert any(item.startswith("sockets:OK:") for item in got)
    assert all(c.accepted >= 1 for c in canaries.values()), {
        n: c.accepted for n, c in canaries.items()
    }
    assert all(Path(p).exists() for p in targets["write"][:2])


async def test_import_time_code_reaches_nothing(
    box: Sandbox,
    canaries: dict[str, CanaryListener],
    targets: dict[str, list],  # type: ignore[type-arg]
) -> None:
    status = {p.entry.name: p for p in box.plugins}
    assert status["importer"].status == "loaded", status["importer"].reason
    meta = status["importer"].meta
    assert meta is not None
    # What its import-time code got travels in its declaration: nothing.
    found = outcomes([meta.description.removeprefix("loot: ")])
    assert "env:TMPDIR" in found  # PATH, LANG and its own scratch dir: no COOP_*, no keys
    assert_nothing_reached(found, canaries, targets)
    refusals = by_label(found, "unix ")
    assert refusals[PG_SOCKET] == "FileNotFoundError"  # not in its view at all
    assert set(refusals) == set(targets["unix"])
    assert by_label(found, "")["sockets"] == "FileNotFoundError"


async def test_score_time_code_reaches_nothing(
    box: Sandbox,
    canaries: dict[str, CanaryListener],
    targets: dict[str, list],  # type: ignore[type-arg]
) -> None:
    result = await box.run(scorer="importer", records=[post()], now=NOW)
    found = outcomes(result.reasons)
    assert any(item.startswith("import read") for item in found)
    assert any(item.startswith("score read") for item in found)
    assert_nothing_reached(found, canaries, targets)
    network = by_label(found, "score tcp ")
    assert network == {"127.0.0.1:5432": "OSError", f"127.0.0.1:{canaries['tcp'].port}": "OSError"}
    files = by_label(found, "score read ")
    assert {files[p] for p in targets["read"]} == {"FileNotFoundError"}
    assert by_label(found, "score ")["fork"] == "BlockingIOError"


async def test_python_sockets_at_import_time_are_a_sandbox_violation(
    box: Sandbox,
    canaries: dict[str, CanaryListener],
    targets: dict[str, list],  # type: ignore[type-arg]
) -> None:
    caller = next(p for p in box.plugins if p.entry.name == "caller")
    assert caller.status == "failed"
    assert caller.reason == "sandbox violation: it tried to use the network"
    assert_nothing_reached([], canaries, targets)


@pytest.mark.parametrize("which", ["tcp", "dns", "public", "abstract", "tmp", "run", "postgres"])
async def test_python_sockets_in_score_are_refused_as_a_sandbox_violation(
    box: Sandbox,
    canaries: dict[str, CanaryListener],
    targets: dict[str, list],  # type: ignore[type-arg]
    which: str,
) -> None:
    commands = {
        "tcp": f"connect:{canaries['tcp'].port}",
        "dns": "dns:example.org",
        "public": "public:1.1.1.1:443",
        "postgres": f"unix:{PG_SOCKET}",
    }
    command = commands.get(which) or f"unix:{canaries[which].unix}"
    with pytest.raises(ScorerError) as caught:
        await box.run(scorer="hostile", records=[record("post", text=command)], now=NOW)
    assert caught.value.code == "sandbox_violation"
    assert "network" in caught.value.message
    assert_nothing_reached([], canaries, targets)


async def test_stdlib_modules_imported_lazily_in_score_load(sandbox: Sandbox) -> None:
    result = await sandbox.run(scorer="hostile", records=[record("post", text="strptime")], now=NOW)
    assert list(result.reasons) == ["lazy:True day:2"]


def _descendants(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found += [int(child), *_descendants(int(child))]
    return found


def _environ_and_fds(pid: int) -> tuple[list[bytes], list[str]]:
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    fds = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    return sorted(e.split(b"=")[0] for e in environ if e), fds


async def test_the_template_starts_clean_with_no_inherited_descriptors(box: Sandbox) -> None:
    assert box._process is not None
    pids = [box._process.pid, *_descendants(box._process.pid)]
    seen = {pid: _environ_and_fds(pid) for pid in pids}
    assert len(seen) >= 3  # bwrap, its pid 1, the template (and idle children)
    for keys, fds in seen.values():
        assert set(keys) <= {b"PATH", b"LANG", b"PWD", b"TMPDIR"}  # PWD: bwrap's /
        files = [f for f in fds if not f.startswith(("socket:", "pipe:", "anon_inode:"))]
        assert set(files) <= {"/dev/null"}, files


async def test_a_key_shaped_value_never_reaches_a_stored_score(
    db: str,
    vault: Vault,
    settings: Settings,
    escape_config: SandboxConfig,
    canaries: dict[str, CanaryListener],
    targets: dict[str, list],  # type: ignore[type-arg]
) -> None:
    """End to end on SQLite and PostgreSQL: the member enables the hostile scorer, it runs on
    their records, and what is stored (and shown to them and granted apps) holds no key."""
    box = Sandbox(escape_config)
    flow = ScoringFlow(vault=vault, runner=box)
    try:
        member = await make_member(vault)
        await add_records(vault, member, posts(NOW, 3))
        outcome = await flow.enable(member_id=member, scorer="importer")
        assert [o.status for o in outcome] == ["stored"]
        (score,) = await service.list_current_scores(vault=vault, member_id=member)
    finally:
        await flow.close()
    assert score.explanation is not None
    stored = list(score.explanation.reasons)
    stored += [c.reason for c in score.explanation.contributions]
    found = outcomes(stored)
    assert len(found) > 20
    assert_nothing_reached(found, canaries, targets)
    assert [m.group(0) for text in stored for m in KEY_SHAPED.finditer(text)] == []
    assert settings.master_key is not None
    for key in (PLANTED_SECRET, settings.master_key.partition(":")[2]):
        assert not any(key in text for text in stored)


def test_plugins_list_runs_no_plugin_code_in_its_own_process(
    hostile_site: Path,
    planted: dict[str, Path],
    targets: dict[str, list],  # type: ignore[type-arg]
) -> None:
    """`marker` writes a canary file when imported. `coop plugins list` reports it loaded
    (its declaration was read in the sandbox) and the canary never appears on the host."""
    env = {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "COOP_DATA_DIR": str(planted["data"]),
        "COOP_PLUGIN_PATH": str(hostile_site),
        "COOP_MASTER_KEY": PLANTED_KEY,
    }
    coop = str(Path(sys.executable).parent / "coop")
    listed = subprocess.run(
        [coop, "plugins", "list"], env=env, capture_output=True, text=True, timeout=120
    )
    assert listed.returncode == 1, listed.stderr  # `broken` failed to load: exit 1
    assert "broken           failed" in listed.stdout
    marker = next(line for line in listed.stdout.splitlines() if line.startswith("marker "))
    assert " loaded " in marker
    assert "reduced filesystem view (bubblewrap) yes" in listed.stdout
    assert [p for p in targets["marker"] if Path(p).exists()] == []
    # The control: importing it the way the old template did writes the canary.
    control = {**env, "PYTHONPATH": str(hostile_site)}
    subprocess.run(
        [sys.executable, "-c", "import coop_score_hostile.marker"], env=control, check=True
    )
    assert all(Path(p).exists() for p in targets["marker"])


def _postgres_over_its_socket() -> bool:
    return "postgres" in ENGINES and os.path.exists(PG_SOCKET)


@pytest.mark.parametrize("engine", ["sqlite", "postgres-unix-socket"])
async def test_a_server_on_postgres_over_its_unix_socket_stores_no_key(
    hostile_site: Path,
    planted: dict[str, Path],
    canaries: dict[str, CanaryListener],
    targets: dict[str, list],  # type: ignore[type-arg]
    engine: str,
) -> None:
    """A separate process configured like a server (keys in its environment, the database
    on SQLite in the data dir, or on PostgreSQL over the Unix socket the plugin attacks)
    scores a member with the hostile plugin: nothing is reached, no key is stored."""
    if engine.startswith("postgres") and not _postgres_over_its_socket():
        pytest.skip("PostgreSQL with a Unix socket is not part of this run")
    name = await create_pg_database() if engine.startswith("postgres") else None
    url = (
        f"postgres://postgres@/{name}?host={Path(PG_SOCKET).parent}"
        if name
        else f"sqlite://{planted['data'] / 'server.sqlite3'}"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "COOP_DATA_DIR": str(planted["data"]),
        "COOP_DATABASE_URL": url,
        "COOP_MASTER_KEY": PLANTED_KEY,
        "COOP_SECRET_KEY": PLANTED_SECRET,
        "COOP_PLUGIN_PATH": str(hostile_site),
    }
    try:
        run = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "tests.scoring.escape_server"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
    finally:
        if name:
            await drop_pg_database(name)
    assert run.returncode == 0, run.stderr[-2000:]
    stored = json.loads(run.stdout)
    assert stored["status"] == ["stored"]
    texts = stored["reasons"] + stored["contributions"]
    found = outcomes(texts)
    assert any(item.startswith("score unix") for item in found)
    assert_nothing_reached(found, canaries, targets)
    assert by_label(found, "score unix ")[PG_SOCKET] == "FileNotFoundError"
    assert [m.group(0) for text in texts for m in KEY_SHAPED.finditer(text)] == []
