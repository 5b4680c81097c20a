"""PL-02..PL-08: a hostile plugin attacks the sandbox; every attempt fails, the host stays
healthy and a well-behaved scorer next to it keeps working."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from coop.errors import (
    SandboxUnavailableError,
    ScorerError,
    ScorerOutputError,
    ScorerTimeoutError,
    ScorerViolationError,
)
from coop.scoring.sandbox import Isolation, Sandbox, SandboxConfig
from coop.scoring.spec import InputRecord, ScoreResult
from coop.testing import NOW, post, record
from tests.scoring.conftest import CanaryListener, _visible_base

pytestmark = pytest.mark.timeout(60)


def command(text: str) -> list[InputRecord]:
    return [record("post", text=text, ref="cmd"), post(ref="other", favourites=1)]


async def attack(sandbox: Sandbox, text: str) -> ScoreResult:
    return await sandbox.run(scorer="hostile", records=command(text), now=NOW)


async def assert_neighbour_works(sandbox: Sandbox) -> None:
    result = await sandbox.run(scorer="polite", records=[post(), post()], now=NOW)
    assert result.value == 2


async def test_sandbox_runs_with_full_isolation_on_this_machine(sandbox: Sandbox) -> None:
    assert sandbox.isolation.complete, sandbox.isolation
    assert sandbox.isolation.view  # bubblewrap's reduced view
    result = await attack(sandbox, "whoami")
    who, caps = result.reasons
    uid = int(who.split()[0].removeprefix("uid:"))
    assert sandbox.config.uid <= uid < sandbox.config.uid + sandbox.config.id_slots
    assert who.startswith(f"uid:{uid} cwd:/var/tmp/coop-score-")
    assert caps == f"caps:0000000000000000 tmpdir:{who.partition('cwd:')[2]}"


async def test_infinite_loop_is_killed_at_the_wall_clock_timeout(sandbox: Sandbox) -> None:
    with pytest.raises(ScorerTimeoutError) as caught:
        await attack(sandbox, "loop")
    assert caught.value.code == "plugin_timeout"
    await assert_neighbour_works(sandbox)


async def test_sleeping_forever_is_killed_at_the_wall_clock_timeout(sandbox: Sandbox) -> None:
    with pytest.raises(ScorerTimeoutError):
        await attack(sandbox, "sleep")
    await assert_neighbour_works(sandbox)


@pytest.mark.parametrize("loop", ["loop", "loop-ignoring-sigxcpu"])
async def test_cpu_limit_kills_a_busy_loop_as_a_timeout_before_a_long_wall_clock(
    sandbox_config: SandboxConfig, loop: str
) -> None:
    """PL-04: killed by RLIMIT_CPU (SIGXCPU, or SIGKILL at the hard limit when the plugin
    ignores SIGXCPU) is a plugin_timeout, not a plugin_error."""
    box = Sandbox(replace(sandbox_config, cpu_seconds=1, timeout_seconds=20))
    try:
        with pytest.raises(ScorerTimeoutError) as caught:
            await attack(box, loop)
        assert caught.value.code == "plugin_timeout"
        assert caught.value.message == "The scorer used up its CPU time (1 s) and was stopped."
        await assert_neighbour_works(box)
    finally:
        await box.close()


async def test_memory_bomb_fails_at_the_address_space_limit(sandbox: Sandbox) -> None:
    with pytest.raises(ScorerError) as caught:
        await attack(sandbox, "memory")
    assert caught.value.code == "plugin_error"
    # MemoryError is raised; if even reporting it runs out of memory the child just dies.
    assert any(w in caught.value.message for w in ("MemoryError", "crashed", "signal"))
    await assert_neighbour_works(sandbox)


async def test_huge_output_is_refused_as_too_large(sandbox: Sandbox) -> None:
    with pytest.raises(ScorerOutputError) as caught:
        await attack(sandbox, "huge")
    assert caught.value.code == "output_too_large"
    await assert_neighbour_works(sandbox)


@pytest.mark.parametrize("attempt", ["nan", "inf", "range", "ref", "ref:other-members-record"])
async def test_invalid_values_are_rejected(sandbox: Sandbox, attempt: str) -> None:
    with pytest.raises(ScorerOutputError) as caught:
        await attack(sandbox, attempt)
    assert caught.value.code == "invalid_plugin_output"


@pytest.mark.parametrize(
    ("attempt", "what"),
    [("raise", "raised RuntimeError"), ("exit", "crashed"), ("segfault", "signal 11")],
)
async def test_crashes_are_reported_without_member_data(
    sandbox: Sandbox, attempt: str, what: str, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(ScorerError) as caught:
        await attack(sandbox, attempt)
    assert caught.value.code == "plugin_error"
    assert what in caught.value.message
    assert "secret" not in caught.value.message
    assert "secret" not in caplog.text
    await assert_neighbour_works(sandbox)


async def test_environment_holds_only_path_lang_and_its_scratch_dir(
    sandbox_config: SandboxConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COOP_MASTER_KEY", "canary-kek:SHOULD-NEVER-LEAK")
    box = Sandbox(sandbox_config)  # started after the server got its secret
    try:
        result = await attack(box, "env")
    finally:
        await box.close()
    environ, proc1, ppid = result.reasons
    assert "SHOULD-NEVER-LEAK" not in environ
    assert set(eval(environ)) == {"PATH", "LANG", "TMPDIR"}  # noqa: S307 - JSON of strings
    assert proc1.startswith("proc1:failed:")
    assert ppid.startswith("ppid:failed:")


async def test_database_and_keyring_files_are_not_in_the_view(
    sandbox: Sandbox, secret_dir: Path
) -> None:
    for name in ("coop.sqlite3", "keyring"):
        result = await attack(sandbox, f"read:{secret_dir / name}")
        assert list(result.reasons) == ["failed:FileNotFoundError"]


async def test_the_data_dir_is_not_even_visible(
    sandbox_config: SandboxConfig, secret_dir: Path
) -> None:
    box = Sandbox(replace(sandbox_config, hide=(str(secret_dir),)))
    try:
        result = await attack(box, f"read:{secret_dir / 'coop.sqlite3'}")
    finally:
        await box.close()
    assert list(result.reasons) == ["failed:FileNotFoundError"]


async def test_files_under_the_servers_tmp_are_invisible(sandbox: Sandbox, tmp_path: Path) -> None:
    secret = tmp_path / "coop.sqlite3"
    secret.write_text("TOP-SECRET")
    secret.chmod(0o644)
    result = await attack(sandbox, f"read:{secret}")
    assert list(result.reasons) == ["failed:FileNotFoundError"]


async def test_writes_outside_the_scratch_dir_fail(
    sandbox: Sandbox, secret_dir: Path, hostile_site: Path
) -> None:
    tries = {
        secret_dir / "planted.py": "FileNotFoundError",  # not in the view
        hostile_site / "planted.py": "OSError",  # a read-only bind (EROFS)
        Path("/tmp/planted.py"): "PermissionError",  # the view's /tmp is root's, 0755
        Path("/usr/lib/planted.py"): "OSError",  # read-only
    }
    for path, error in tries.items():
        result = await attack(sandbox, f"write:{path}")
        assert list(result.reasons) == [f"failed:{error}"], path
        assert not path.exists()


async def test_network_is_unreachable_and_the_canary_sees_nothing(
    sandbox: Sandbox, canary_listener: CanaryListener
) -> None:
    with pytest.raises(ScorerViolationError) as caught:
        await attack(sandbox, f"connect:{canary_listener.port}")
    assert caught.value.code == "sandbox_violation"
    assert canary_listener.accepted == 0
    await assert_neighbour_works(sandbox)


async def test_module_globals_and_tmp_do_not_carry_over_between_members(
    sandbox: Sandbox,
) -> None:
    cached = await attack(sandbox, "cache:CANARY-OF-MEMBER-A")
    # /tmp is read-only; it could write its own private /var/tmp and /dev/shm.
    assert list(cached.reasons) == ["failed:PermissionError", "ok:written", "ok:written"]
    peek = await attack(sandbox, "peek")
    assert not any("CANARY-OF-MEMBER-A" in reason for reason in peek.reasons)
    assert peek.reasons[0] == "cache:"


async def test_sysv_shared_memory_does_not_carry_over_between_members(sandbox: Sandbox) -> None:
    stored = await attack(sandbox, "shm:CANARY-OF-MEMBER-A")
    assert list(stored.reasons) == ["ok:stored"]  # it may use its own IPC namespace
    peek = await attack(sandbox, "shm-peek")
    assert list(peek.reasons) == ["failed:FileNotFoundError"]  # no such segment here


async def test_fork_bomb_cannot_fork(sandbox: Sandbox) -> None:
    result = await attack(sandbox, "fork")
    assert list(result.reasons) == ["forked:ok:0"]
    await assert_neighbour_works(sandbox)


async def test_big_files_stop_at_the_file_size_limit(sandbox: Sandbox) -> None:
    try:
        result = await attack(sandbox, "bigfile")
    except ScorerError as exc:  # SIGXFSZ when not ignored
        assert exc.code == "plugin_error"
    else:
        assert result.reasons[0].startswith("failed:")


async def test_a_dead_template_is_restarted(fresh_sandbox: Sandbox) -> None:
    await fresh_sandbox.start()
    assert fresh_sandbox._process is not None
    fresh_sandbox._process.kill()
    fresh_sandbox._process.wait()
    await assert_neighbour_works(fresh_sandbox)
    assert fresh_sandbox.restarts == 1


async def test_the_server_process_is_untouched_by_attacks(sandbox: Sandbox) -> None:
    before = set(os.environ)
    for attempt in ("exit", "segfault", "loop", "fork"):
        with contextlib.suppress(ScorerError):
            await attack(sandbox, attempt)
    assert set(os.environ) == before
    assert sandbox.alive
    await assert_neighbour_works(sandbox)


async def test_without_isolation_scorers_are_refused_unless_allowed(
    fresh_sandbox: Sandbox,
) -> None:
    await fresh_sandbox.start()
    fresh_sandbox.isolation = Isolation(netns=False, mountns=True, uid_drop=True)
    with pytest.raises(SandboxUnavailableError) as caught:
        await fresh_sandbox.run(scorer="polite", records=[post()], now=NOW)
    assert caught.value.code == "sandbox_unavailable"
    relaxed = Sandbox(replace(fresh_sandbox.config, require_isolation=False))
    try:
        await relaxed.start()
        relaxed.isolation = Isolation()
        await assert_neighbour_works(relaxed)
    finally:
        await relaxed.close()


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A folder anyone may write to, outside the scratch dirs (a marker plugin's target)."""
    path = _visible_base() / f"open-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    path.chmod(0o777)
    try:
        yield path
    finally:
        shutil.rmtree(path)


async def test_without_bubblewrap_no_plugin_is_imported_and_scorers_are_refused(
    sandbox_config: SandboxConfig, hostile_site: Path, open_dir: Path
) -> None:
    """Namespaces and the uid drop alone leave the filesystem (and its sockets) in view: with
    isolation required, the template must not import a plugin even to read its declaration."""
    canary = open_dir / "imported"
    targets = hostile_site / "coop_score_hostile" / "targets.json"
    targets.write_text(json.dumps({"marker": [str(canary)]}))
    box = Sandbox(replace(sandbox_config, view="off"))
    try:
        await box.start()
        assert not box.isolation.view and not box.isolation.complete
        marker = next(p for p in box.plugins if p.entry.name == "marker")
        assert (marker.status, marker.reason) == (
            "failed",
            "not loaded: scorer isolation is unavailable",
        )
        with pytest.raises(SandboxUnavailableError):
            await box.run(scorer="polite", records=[post()], now=NOW)
    finally:
        await box.close()
        targets.unlink()
    assert not canary.exists()


async def test_a_child_cannot_read_another_members_child_running_at_the_same_time(
    sandbox_config: SandboxConfig,
) -> None:
    """Member A's child makes itself traceable again (PR_SET_DUMPABLE) while member B's child,
    running at the same time, scans every process's memory for A's canary."""
    box = Sandbox(replace(sandbox_config, timeout_seconds=10, parallel=2))
    try:
        exposed, stolen = await asyncio.gather(
            attack(box, "expose:CANARY-OF-MEMBER-A"),
            attack(box, "steal:CANARY-OF-MEMBER-"),
        )
    finally:
        await box.close()
    assert list(exposed.reasons) == ["ok:1"]
    # Each child has a uid of its own: the sibling's /proc/<pid>/mem does not even open.
    assert list(stolen.reasons) == ["failed:PermissionError"]


async def test_a_raise_is_logged_with_the_plugins_frames_not_its_message(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(ScorerError) as caught:
        await attack(sandbox, "raise")
    failure = caught.value.failure or {}
    assert failure["type"] == "RuntimeError"
    assert failure["message"] == "member secret text in an exception"  # for `plugins run`
    logged = next(r for r in caplog.records if r.getMessage() == "scorer failed")
    frames: list[str] = logged.frames  # type: ignore[attr-defined]
    assert frames and all("coop/scoring/" not in f for f in frames)
    assert frames[-1].endswith(" in score")
    assert "coop_score_hostile/__init__.py:" in frames[-1]
    assert "secret" not in repr(logged.__dict__)
