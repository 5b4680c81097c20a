"""Upgrading a real plugin distribution: version 1.0.0 is pip-installed into a plugin folder,
members score with it, then 2.0.0 (a new formula that also reads activity) is installed over
it and the sandbox restarted, as an operator would. The new version waits for each member's
consent; accepted, its change says what the new version alone did."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from coop.jobs.scoring import ScoringFlow
from coop.scoring import service
from coop.scoring.sandbox import Sandbox, SandboxConfig
from coop.types import utcnow
from coop.vault import Vault
from tests.scoring.factories import add_records, make_member, posts

pytestmark = pytest.mark.timeout(240)

SCORER = """
from coop.scoring.spec import API_VERSION, Contribution, ScoreResult


class UpgradeScorer:
    api_version = API_VERSION
    name = "upgrade"
    version = "{version}"
    title = "Upgrade"
    description = "Favourites, times a factor."
    reads = {reads!r}
    range = (0.0, 100000.0)
    needs_text = False
    homepage = ""

    def score(self, records, now):
        parts = [(r.counts.get("favourites", 0) * {factor}, r) for r in records]
        return ScoreResult(
            value=round(sum(p for p, _ in parts), 6),
            contributions=[Contribution(amount=p, reason="x", ref=r.ref) for p, r in parts],
        )
"""


def distribution(
    root: Path, version: str, reads: tuple[str, ...], factor: float, class_version: str = ""
) -> Path:
    src = root / f"coop-score-upgrade-{version}"
    package = src / "src" / "coop_score_upgrade"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        SCORER.format(version=class_version or version, reads=reads, factor=factor)
    )
    (src / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [build-system]
            requires = ["setuptools>=64"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "coop-score-upgrade"
            version = "{version}"
            requires-python = ">=3.11"
            dependencies = []

            [project.entry-points."coop.scorers"]
            upgrade = "coop_score_upgrade:UpgradeScorer"

            [tool.setuptools.packages.find]
            where = ["src"]
            """
        )
    )
    return src


PIP = (sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--upgrade")


def pip_install(source: Path, target: Path) -> None:
    subprocess.run(
        [*PIP, "--target", str(target), str(source)],
        check=True,
        capture_output=True,
    )
    target.chmod(0o755)  # plugin code is imported as uid 65534 (pytest's folders are 0700)


async def flow_on(vault: Vault, site: Path) -> ScoringFlow:
    config = SandboxConfig(plugin_path=(str(site),), timeout_seconds=5.0, start_timeout=60.0)
    flow = ScoringFlow(vault=vault, runner=Sandbox(config))
    await flow.start()
    return flow


async def test_an_installed_upgrade_that_reads_more_waits_then_explains_itself(
    db: str, vault: Vault, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    pip_install(distribution(tmp_path, "1.0.0", ("post",), 1.0), site)
    member = await make_member(vault)
    await add_records(vault, member, posts(utcnow(), 4))
    flow = await flow_on(vault, site)
    try:
        [first] = await flow.enable(member_id=member, scorer="upgrade")
        assert first.status == "stored"
    finally:
        await flow.close()

    pip_install(distribution(tmp_path, "2.0.0", ("post", "activity"), 1.5), site)
    flow = await flow_on(vault, site)
    try:
        assert (await flow.meta("upgrade")).version == "2.0.0"
        [held] = await flow.recompute_member(member_id=member)
        assert (held.status, held.code) == ("dropped", "needs_consent")
        [stale] = await service.list_current_scores(vault=vault, member_id=member)
        assert (stale.scorer_version, stale.stale) == ("1.0.0", True)
        assert "your public activity" in stale.stale_reason
        waiting = await flow.pending_versions(member_id=member)
        assert waiting["upgrade"].gap.version == "2.0.0"

        [accepted] = await flow.accept_version(member_id=member, scorer="upgrade")
        assert accepted.status == "stored"
        [current] = await service.list_current_scores(vault=vault, member_id=member)
    finally:
        await flow.close()
    assert (current.scorer_version, current.stale) == ("2.0.0", False)
    change = current.change
    assert change is not None
    assert change.previous_version == "1.0.0"
    assert change.causes[0].kind == "scorer_version"  # x1.5: the new formula alone
    assert change.causes[0].amount == pytest.approx(change.delta)
    assert abs(sum(c.amount for c in change.causes) - change.delta) <= 1e-9


def test_plugins_list_warns_when_class_and_distribution_versions_disagree(tmp_path: Path) -> None:
    site = tmp_path / "site"
    pip_install(distribution(tmp_path, "7.0.0", ("post",), 1.0, class_version="0.1.0"), site)
    data = tmp_path / "data"
    data.mkdir()
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "COOP_DATA_DIR": str(data)}
    env["COOP_PLUGIN_PATH"] = str(site)
    listed = subprocess.run(
        [sys.executable, "-m", "coop", "plugins", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    assert (
        "WARNING: class version 0.1.0 differs from distribution version 7.0.0; members see "
        "0.1.0 (bump both together)"
    ) in listed.stdout
    assert listed.stdout.count("WARNING: class version") == 1  # reach and cadence agree
