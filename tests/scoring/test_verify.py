"""`coop verify PATH` on a real export (made through the real export path, both engines): it
reproduces; a tampered input or result differs; a missing scorer or another build of it is
named; bad input exits 2 with one line. It needs no database."""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from coop.scoring import inputs, proofs
from coop.scoring.spec import InputRecord
from coop.vault import Vault
from tests.scoring.proof_kit import build_wheel, coop_verify, export_zip, scored_member
from tests.scoring.test_upgrade import distribution, flow_on, pip_install

pytestmark = pytest.mark.timeout(400)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    folder = tmp_path / "site"
    pip_install(build_wheel(tmp_path, "1.0.0", ("post",), 1.0), folder)
    return folder


async def exported(vault: Vault, site: Path, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """The member's export ZIP on disk, and its bundle of `upgrade`."""
    archive = tmp_path / "coop-export.zip"
    archive.write_bytes(await export_zip(vault, await scored_member(vault, site)))
    with zipfile.ZipFile(archive) as zf:
        return archive, json.loads(zf.read("bundles/upgrade.json"))


def write(tmp_path: Path, bundle: dict[str, Any], name: str = "bundle.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(bundle))
    return path


async def test_a_real_export_reproduces_and_a_tampered_bundle_differs(
    db: str, vault: Vault, site: Path, tmp_path: Path
) -> None:
    archive, bundle = await exported(vault, site, tmp_path)
    data = tmp_path / "author"  # a plugin author's machine: no database, no migrations
    verified = coop_verify(archive, site=site, data=data)
    assert (verified.returncode, verified.stderr) == (0, "")
    value = bundle["result"]["value"]
    assert verified.stdout == f"upgrade: reproduced {value} with 1.0.0\n"
    assert not data.exists() or not any(data.iterdir())

    one = write(tmp_path, bundle)
    assert coop_verify(one, site=site, data=data).returncode == 0

    more = json.loads(json.dumps(bundle))
    more["inputs"]["records"][0][3]["favourites"] += 10  # a changed input
    changed = coop_verify(write(tmp_path, more, "input.json"), site=site, data=data)
    assert changed.returncode == 1
    assert changed.stdout == f"upgrade: differs: bundle {value}, re-run {value + 10}\n"

    claimed = json.loads(json.dumps(bundle))
    claimed["result"]["value"] = value + 7  # a changed result
    lied = coop_verify(write(tmp_path, claimed, "result.json"), site=site, data=data)
    assert lied.returncode == 1
    assert lied.stdout == f"upgrade: differs: bundle {value + 7}, re-run {value}\n"

    reworded = json.loads(json.dumps(bundle))
    reworded["result"]["contributions"][0]["reason"] = "something else"
    explained = coop_verify(write(tmp_path, reworded, "reason.json"), site=site, data=data)
    assert explained.returncode == 1
    assert explained.stdout == (
        f"upgrade: differs: value {value} in both, but the contributions differ\n"
    )


async def test_a_missing_scorer_or_another_build_of_it_is_named(
    db: str, vault: Vault, site: Path, tmp_path: Path
) -> None:
    archive, bundle = await exported(vault, site, tmp_path)
    data = tmp_path / "data"
    missing = coop_verify(archive, site=None, data=data)
    assert missing.returncode == 1
    assert missing.stdout == "upgrade: scorer missing (not installed)\n"

    # Same name and version, another formula: a different build, told by its content hash.
    other = tmp_path / "other-site"
    pip_install(build_wheel(tmp_path, "1.0.0", ("post",), 2.0), other)
    rebuilt = coop_verify(archive, site=other, data=data)
    assert rebuilt.returncode == 1
    sha = bundle["distribution"]["sha256"]
    assert rebuilt.stdout.startswith(
        f"upgrade: hash differs: bundle coop-score-upgrade 1.0.0 sha256 {sha}, installed "
        "coop-score-upgrade 1.0.0 sha256 "
    )
    assert sha[:12] not in rebuilt.stdout.split("installed")[1]


async def test_a_stale_bundle_proves_what_its_own_version_computed(
    db: str, vault: Vault, tmp_path: Path
) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    wheel = build_wheel(tmp_path, "1.0.0", ("post",), 1.0)
    pip_install(wheel, old)
    pip_install(wheel, new)
    member = await scored_member(vault, new)
    pip_install(distribution(tmp_path, "2.0.0", ("post", "activity"), 1.5), new)
    flow = await flow_on(vault, new)
    try:
        [held] = await flow.recompute_member(member_id=member)
        assert held.code == "needs_consent"
    finally:
        await flow.close()
    archive = tmp_path / "export.zip"
    archive.write_bytes(await export_zip(vault, member))

    on_the_server = coop_verify(archive, site=new, data=tmp_path / "data")
    assert on_the_server.returncode == 1
    assert on_the_server.stdout.startswith("upgrade: hash differs: bundle coop-score-upgrade 1.0.0")
    with_its_version = coop_verify(archive, site=old, data=tmp_path / "data")
    assert with_its_version.returncode == 0
    assert with_its_version.stdout.endswith(" [stale: not the member's current version]\n")


def sample_bundle() -> dict[str, Any]:
    now = datetime(2026, 12, 3, tzinfo=UTC)
    record = InputRecord("r1", "post", now, {"favourites": 3}, None, None)
    used = inputs.ScoreInputs(now, ("post",), False, (record,), {"r1": "id-1"})
    return proofs.build(
        score_id="00000000-0000-0000-0000-000000000001",
        scorer="upgrade",
        version="1.0.0",
        computed_at=now,
        value=3.0,
        explanation={"contributions": [{"amount": 3.0, "reason": "x", "ref": "r1"}]},
        used=used,
        stale_reason="",
    )


def zip_with(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, body in members.items():
            zf.writestr(name, body)
    return path


def bad_inputs(tmp: Path) -> dict[str, tuple[Path, str]]:
    good = sample_bundle()
    cases: dict[str, tuple[Path, str]] = {}

    def bundle_case(name: str, change: Any, expected: str) -> None:
        body = json.loads(json.dumps(good))
        change(body)
        cases[name] = (write(tmp, body, f"{name}.json"), expected)

    cases["missing"] = (tmp / "nope.json", "is not a file")
    cases["folder"] = (tmp, "is not a file")
    text = tmp / "notes.txt"
    text.write_text("hello")
    cases["text"] = (text, "is not JSON")
    bundle_case("version", lambda b: b.update(version=2), "proof bundle version 2 is not 1")
    bundle_case("format", lambda b: b.update(format="coop-export"), "not a proof bundle")
    bundle_case("records", lambda b: b["inputs"].update(records="all"), "inputs.records is missing")
    bundle_case(
        "counts",
        lambda b: b["inputs"]["records"][0].__setitem__(3, {"favourites": "many"}),
        "counts must map names to whole numbers",
    )
    bundle_case("value", lambda b: b["result"].update(value="high"), "result.value is not")
    cases["empty_zip"] = (zip_with(tmp / "empty.zip", {"profile.json": b"{}"}), "no proof bundles")
    bomb = b"\0" * (65 * 1024 * 1024)  # deflates to ~64 KiB, expands past the bundle limit
    cases["bomb"] = (zip_with(tmp / "bomb.zip", {"bundles/x.json": bomb}), "larger than 64 MiB")
    many = {f"f{i}": b"" for i in range(10_001)}
    cases["entries"] = (zip_with(tmp / "many.zip", many), "more than 10000 files")
    broken = zip_with(tmp / "broken.zip", {"bundles/upgrade.json": json.dumps(good).encode()})
    broken.write_bytes(broken.read_bytes()[:-30])  # a truncated central directory
    cases["truncated"] = (broken, "")
    return cases


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    return bad_inputs(tmp_path_factory.mktemp("bad"))


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "folder",
        "text",
        "version",
        "format",
        "records",
        "counts",
        "value",
        "empty_zip",
        "bomb",
        "entries",
        "truncated",
    ],
)
def test_bad_input_exits_2_with_one_line(
    case: str, bad: dict[str, tuple[Path, str]], tmp_path: Path
) -> None:
    path, expected = bad[case]
    result = coop_verify(path, site=None, data=tmp_path / "data")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("coop: ")
    assert expected in result.stderr
