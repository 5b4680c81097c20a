"""The plugin contract is documented member by member, and plugins stay behind it."""

from __future__ import annotations

import ast
import dataclasses
import inspect
from pathlib import Path

from coop.scoring import spec

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "plugins" / "reference.md"


def public_members() -> set[str]:
    """Every public name spec.py defines, with dataclass fields and protocol members."""
    names: set[str] = set()
    for name, value in vars(spec).items():
        if name.startswith("_") or name == "CONTRACT_MEMBERS" or name == "annotations":
            continue
        if inspect.isclass(value) and value.__module__ != spec.__name__:
            continue
        if inspect.ismodule(value) or (callable(value) and not inspect.isclass(value)):
            continue
        if not inspect.isclass(value) and not name.isupper():
            continue
        names.add(name)
        if dataclasses.is_dataclass(value):
            names |= {f"{name}.{f.name}" for f in dataclasses.fields(value)}
        elif inspect.isclass(value):
            own = set(inspect.get_annotations(value))
            own |= {k for k, v in value.__dict__.items() if callable(v) and not k.startswith("_")}
            names |= {f"{name}.{member}" for member in own}
    return names


def test_contract_members_lists_every_public_member() -> None:
    assert public_members() == set(spec.CONTRACT_MEMBERS)


def test_every_contract_member_is_documented() -> None:
    text = REFERENCE.read_text()
    missing = [m for m in spec.CONTRACT_MEMBERS if f"`{m}`" not in text]
    assert not missing, f"document these in docs/plugins/reference.md: {missing}"


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_coop_never_imports_a_plugin() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "coop").rglob("*.py")
        if any(name.startswith("coop_score_") for name in imports(path))
    ]
    assert not offenders


def test_reference_plugins_import_only_the_spec_and_coop_testing() -> None:
    allowed = {"coop.scoring.spec", "coop.testing"}
    for path in (ROOT / "plugins").rglob("*.py"):
        used = {name for name in imports(path) if name.split(".")[0] == "coop"}
        assert used <= allowed, (path, used - allowed)
