"""The distribution content hash: one wheel, installed at two paths, hashes the same (and as
the wheel itself); a changed file changes it. `coop plugins list` and `coop plugins hash`
show it, and COOP_PLUGINS pins it."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from coop.scoring import disthash
from coop.scoring.registry import discover
from tests.scoring.test_upgrade import distribution, pip_install

pytestmark = pytest.mark.timeout(240)

COOP = str(Path(sys.executable).parent / "coop")


def build_wheel(source: Path, out: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
    )
    [wheel] = out.glob("coop_score_upgrade-*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wheel")
    return build_wheel(distribution(root, "1.0.0", ("post",), 1.0), root / "dist")


def content_hash(site: Path) -> str:
    [entry] = [e for e in discover(allow=None, paths=[str(site)]) if e.name == "upgrade"]
    return entry.content_sha256


def coop(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COOP, *args],
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_one_wheel_installed_at_two_paths_has_one_content_hash(wheel: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "a" / "site", tmp_path / "somewhere" / "else" / "site"
    pip_install(wheel, first)
    pip_install(wheel, second)
    # The same hash at both paths, and it is what the wheel file itself gives.
    assert content_hash(first) == content_hash(second) == disthash.wheel_hash(wheel)
    assert len(content_hash(first)) == 64


def test_a_changed_file_changes_the_content_hash(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    pip_install(wheel, site)
    before = content_hash(site)
    module = site / "coop_score_upgrade" / "__init__.py"
    module.write_text(module.read_text().replace("* 1.0", "* 1.5"))
    assert content_hash(site) not in ("", before)

    rebuilt = tmp_path / "rebuilt"
    changed = build_wheel(distribution(rebuilt, "1.0.0", ("post",), 1.5), rebuilt / "dist")
    assert disthash.wheel_hash(changed) == content_hash(site) != disthash.wheel_hash(wheel)


def test_bytecode_and_installer_files_do_not_count(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    pip_install(wheel, site)
    before = content_hash(site)
    dist_info = next(site.glob("*.dist-info"))
    (dist_info / "INSTALLER").write_text("another installer\n")
    (dist_info / "REQUESTED").write_text("")
    (dist_info / "direct_url.json").write_text('{"url": "file:///elsewhere"}')
    cache = site / "coop_score_upgrade" / "__pycache__"
    cache.mkdir(exist_ok=True)
    (cache / "__init__.cpython-311.pyc").write_bytes(os.urandom(64))
    assert content_hash(site) == before


def test_the_combination_is_sha256sum_lines_sorted_by_path() -> None:
    listing = "0" * 64 + "  a/b.py\n" + "1" * 64 + "  a/c.py\n"
    expected = hashlib.sha256(listing.encode()).hexdigest()
    assert disthash.combine([("a/c.py", "1" * 64), ("a/b.py", "0" * 64)]) == expected


def test_editable_installs_have_no_content_hash() -> None:
    [reach] = [e for e in discover(allow=None) if e.name == "reach"]
    assert reach.content_sha256 == ""


def test_plugins_pin_the_content_hash(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    pip_install(wheel, site)
    digest = disthash.wheel_hash(wheel)
    pinned = discover(allow=(f"upgrade==1.0.0@sha256:{digest}",), paths=[str(site)])
    assert [e.name for e in pinned if e.allowed] == ["upgrade"]
    other = discover(allow=(f"upgrade==1.0.0@sha256:{'0' * 64}",), paths=[str(site)])
    assert [e.reason for e in other if e.name == "upgrade"] == [
        "the installed files differ from the allowed hash"
    ]


def test_plugins_list_and_plugins_hash_show_the_content_hash(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    pip_install(wheel, site)
    env = {"COOP_DATA_DIR": str(tmp_path / "var"), "COOP_PLUGIN_PATH": str(site)}
    digest = disthash.wheel_hash(wheel)
    listed = coop("plugins", "list", "--json", env=env)
    [row] = [p for p in json.loads(listed.stdout)["plugins"] if p["name"] == "upgrade"]
    assert (row["sha256"], row["editable"]) == (digest, False)
    table = coop("plugins", "list", env=env).stdout
    assert any(line.startswith("upgrade") and digest in line for line in table.splitlines())

    of_wheel = coop("plugins", "hash", str(wheel), env=env)
    assert (of_wheel.returncode, of_wheel.stdout) == (0, f"{digest}  {wheel.name}\n")
    of_installed = coop("plugins", "hash", "upgrade", env=env)
    assert of_installed.stdout == f"{digest}  coop-score-upgrade 1.0.0\n"


@pytest.mark.parametrize("target", ["nothing-installed", "missing.whl", "reach"])
def test_plugins_hash_refuses_with_one_line(target: str, tmp_path: Path) -> None:
    result = coop("plugins", "hash", target, env={"COOP_DATA_DIR": str(tmp_path / "var")})
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_a_file_that_is_not_a_wheel_exits_2(tmp_path: Path) -> None:
    fake = tmp_path / "fake-1.0-py3-none-any.whl"
    fake.write_text("not a zip")
    result = coop("plugins", "hash", str(fake), env={"COOP_DATA_DIR": str(tmp_path / "var")})
    assert (result.returncode, result.stderr.count("\n")) == (2, 1)
