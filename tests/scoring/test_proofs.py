"""Proof bundles in the export: one per current score, with the exact inputs, the scorer and
the distribution it ran from (with its content hash), and the result; a stale score's bundle
is marked stale."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from coop.portability import export
from coop.scoring import disthash, proofs, service
from coop.vault import Vault
from tests.scoring.proof_kit import build_wheel, export_zip, json_files, scored_member
from tests.scoring.test_upgrade import distribution, flow_on, pip_install

pytestmark = pytest.mark.timeout(300)


def bundle_schema() -> dict[str, object]:
    schema = json.loads(export.schema_bytes())
    return {"$ref": "#/$defs/proof_bundle", "$defs": schema["$defs"]}


async def test_the_export_holds_a_proof_bundle_per_current_score(
    db: str, vault: Vault, tmp_path: Path
) -> None:
    wheel = build_wheel(tmp_path, "1.0.0", ("post",), 1.0)
    site = tmp_path / "site"
    pip_install(wheel, site)
    member = await scored_member(vault, site)
    files = json_files(await export_zip(vault, member))

    bundle = files["bundles/upgrade.json"]
    jsonschema.validate(bundle, bundle_schema())
    assert "bundles/upgrade.json" in files["manifest.json"]["files"]
    [score] = await service.list_current_scores(vault=vault, member_id=member)
    assert bundle["format"] == "coop-score-proof"
    assert bundle["scorer"] == {"name": "upgrade", "version": "1.0.0"}
    assert bundle["distribution"] == {
        "name": "coop-score-upgrade",
        "version": "1.0.0",
        "sha256": disthash.wheel_hash(wheel),
    }
    assert (bundle["score"]["id"], bundle["score"]["stale"]) == (str(score.id), False)
    assert bundle["result"]["value"] == score.value == 3 + 4 + 5 + 6  # favourites x 1.0
    assert len(bundle["result"]["contributions"]) == 4
    # The inputs are exactly what the scorer got: posts without their text (it reads none),
    # each ref naming one of the member's exported records.
    parsed = proofs.parse(bundle)
    assert [r.kind for r in parsed.inputs.records] == ["post"] * 4
    assert all(r.text is None for r in parsed.inputs.records)
    record_ids = {r["id"] for r in files["records.json"]}
    assert set(parsed.inputs.record_ids.values()) == record_ids
    assert parsed.inputs.now.isoformat() == bundle["inputs"]["now"]


async def test_a_stale_scores_bundle_is_marked_and_names_the_version_that_computed_it(
    db: str, vault: Vault, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    pip_install(build_wheel(tmp_path, "1.0.0", ("post",), 1.0), site)
    member = await scored_member(vault, site)
    pip_install(distribution(tmp_path, "2.0.0", ("post", "activity"), 1.5), site)
    flow = await flow_on(vault, site)
    try:
        [held] = await flow.recompute_member(member_id=member)
        assert held.code == "needs_consent"  # 2.0.0 reads more: the 1.0.0 score stays
    finally:
        await flow.close()

    bundle = json_files(await export_zip(vault, member))["bundles/upgrade.json"]
    jsonschema.validate(bundle, bundle_schema())
    assert bundle["score"]["stale"] is True
    assert "activity" in bundle["score"]["stale_reason"]
    assert bundle["scorer"]["version"] == bundle["distribution"]["version"] == "1.0.0"


async def test_a_disabled_scorer_has_no_bundle(db: str, vault: Vault, tmp_path: Path) -> None:
    site = tmp_path / "site"
    pip_install(build_wheel(tmp_path, "1.0.0", ("post",), 1.0), site)
    member = await scored_member(vault, site)
    await service.disable_scorer(member_id=member, scorer="upgrade")
    files = json_files(await export_zip(vault, member))
    assert not [name for name in files if name.startswith("bundles/")]
