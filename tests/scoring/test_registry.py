"""PL-01 and loading: discovery reads metadata only, COOP_PLUGINS pins what may load, broken
or contract-violating plugins are skipped and reported, never fatal."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from coop.scoring.registry import discover
from coop.scoring.sandbox import Sandbox, SandboxConfig

pytestmark = pytest.mark.timeout(60)

CANARY = Path("coop_score_hostile") / "IMPORTED"


def test_discovery_imports_nothing(hostile_site: Path) -> None:
    canary = hostile_site / CANARY
    canary.unlink(missing_ok=True)
    entries = {e.name: e for e in discover(allow=None, paths=[str(hostile_site)])}
    assert {"hostile", "sideeffect", "broken", "reach", "cadence"} <= set(entries)
    assert not canary.exists()
    assert entries["hostile"].dist == "coop-score-hostile"
    assert entries["hostile"].dist_version == "6.6.6"
    record = next(hostile_site.glob("coop_score_hostile-*.dist-info")) / "RECORD"
    assert entries["hostile"].record_sha256 == hashlib.sha256(record.read_bytes()).hexdigest()


def test_allowlist_restricts_by_scorer_or_distribution_name(hostile_site: Path) -> None:
    entries = discover(allow=("reach", "coop-score-cadence"), paths=[str(hostile_site)])
    allowed = sorted(e.name for e in entries if e.allowed)
    assert allowed == ["cadence", "reach"]
    refused = {e.name: e.reason for e in entries if not e.allowed}
    assert refused["hostile"] == "not listed in COOP_PLUGINS"


def test_allowlist_pins_version_and_hash(hostile_site: Path) -> None:
    paths = [str(hostile_site)]
    digest = next(e for e in discover(allow=None, paths=paths) if e.name == "polite").record_sha256
    good = discover(allow=(f"polite==6.6.6@sha256:{digest}",), paths=paths)
    assert [e.name for e in good if e.allowed] == ["polite"]
    old = {e.name: e for e in discover(allow=("polite==6.6.5",), paths=paths)}
    assert not old["polite"].allowed
    assert old["polite"].reason == "version 6.6.6 is not the allowed 6.6.5"
    changed = {e.name: e for e in discover(allow=("polite==6.6.6@sha256:00ff",), paths=paths)}
    assert changed["polite"].reason == "the installed files differ from the allowed hash"


async def test_bad_plugins_are_skipped_and_reported(sandbox: Sandbox) -> None:
    status = {p.entry.name: p for p in sandbox.plugins}
    assert status["hostile"].status == "loaded"
    assert status["reach"].status == "loaded"
    assert status["cadence"].status == "loaded"
    expected = {
        "broken": "import failed: ImportError",
        "suicidal": "import crashed the interpreter",
        "unversioned": "contract violation: `version` must be a non-empty string",
        "infinite": "contract violation: `range` must be finite with low < high",
        "nosy": "contract violation: `reads` names unknown kinds: private_messages",
        "impostor": "contract violation: `name` must equal the entry point's name",
    }
    for name, reason in expected.items():
        assert status[name].status == "failed", name
        assert status[name].reason == reason
    assert {m.name for m in sandbox.scorers()} >= {"hostile", "polite", "reach", "cadence"}


async def test_only_allowed_plugins_load_in_the_template(
    sandbox_config: SandboxConfig, hostile_site: Path
) -> None:
    (hostile_site / CANARY).unlink(missing_ok=True)
    box = Sandbox(replace(sandbox_config, allow=("reach", "polite")))
    try:
        await box.start()
        assert [m.name for m in box.scorers()] == ["polite", "reach"]
        statuses = {p.entry.name: p.status for p in box.plugins}
        assert statuses["sideeffect"] == "not_allowed"
    finally:
        await box.close()
    assert not (hostile_site / CANARY).exists()


async def test_skipped_plugins_are_logged_by_name_only(
    sandbox_config: SandboxConfig, caplog: pytest.LogCaptureFixture
) -> None:
    box = Sandbox(sandbox_config)
    try:
        await box.start()
    finally:
        await box.close()
    skipped = [r for r in caplog.records if r.getMessage() == "scorer plugin skipped"]
    assert {getattr(r, "plugin", None) for r in skipped} >= {"broken", "suicidal", "unversioned"}
