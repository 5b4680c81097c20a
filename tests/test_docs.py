"""Docs are part of the change: every error code, setting and CLI command is documented."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

import coop.errors
from coop.cli import build_parser
from coop.errors import CoopError

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def all_docs() -> str:
    pages = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
    return "\n".join(page.read_text() for page in pages if page.exists())


def error_codes() -> dict[str, str]:
    """code -> class name, for every CoopError subclass defined in coop/errors.py."""
    codes, todo = {}, [CoopError]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__ == coop.errors.__name__:
            codes[cls.code] = cls.__name__
    return codes


def settings_read() -> set[str]:
    source = (ROOT / "coop" / "config.py").read_text()
    return set(re.findall(r"[\"'](COOP_[A-Z][A-Z0-9_]*)[\"']", source))


def cli_commands(parser: argparse.ArgumentParser, prefix: str = "coop") -> Iterator[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{prefix} {name}"
                yield from cli_commands(sub, f"{prefix} {name}")


def test_every_error_code_is_in_the_error_catalogue() -> None:
    catalogue = (DOCS / "errors.md").read_text()
    missing = {code: name for code, name in error_codes().items() if f"`{code}`" not in catalogue}
    assert not missing, f"add these codes to docs/errors.md: {missing}"


def test_every_setting_is_in_the_operations_guide() -> None:
    guide = (DOCS / "operations.md").read_text()
    missing = sorted(name for name in settings_read() if f"`{name}`" not in guide)
    assert not missing, f"document these settings in docs/operations.md: {missing}"


def test_every_cli_command_is_documented() -> None:
    docs = all_docs()
    missing = [cmd for cmd in cli_commands(build_parser()) if cmd not in docs]
    assert not missing, f"document these commands in docs/ (e.g. operations.md): {missing}"


# Commands the architecture and the issues name as contracts (docs/index.md, issue 16's
# `coop dev` and `coop plugins run`): they exist, and the test above keeps them documented.
CONTRACT_COMMANDS = {
    "coop serve",
    "coop worker",
    "coop migrate",
    "coop app create",
    "coop plugins list",
    "coop plugins new",
    "coop plugins run",
    "coop dev",
    "coop keys rotate",
    "coop export-schema",
    "coop backup",
    "coop restore",
}


def test_every_contract_command_exists() -> None:
    missing = CONTRACT_COMMANDS - set(cli_commands(build_parser()))
    assert not missing, f"these contract commands are gone: {sorted(missing)}"


def test_readme_gives_the_two_commands_and_links_into_docs() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make serve" in readme and "make test" in readme
    for link in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / link).exists(), f"README links to a missing page: {link}"


def test_links_between_docs_pages_resolve() -> None:
    for page in DOCS.glob("*.md"):
        for link in re.findall(r"\]\(([^)#:]+\.md)", page.read_text()):
            assert (page.parent / link).exists(), f"{page.name} links to a missing page: {link}"


REQUIREMENT_ID = re.compile(r"\b(?:OA|GQ|WS|CR|ER|EX|SY|LD|PL)-\d{2}\b")


def requirement_ids_cited() -> dict[str, str]:
    """id -> the first file that cites it, over coop/, tests/, bench/ and plugins/."""
    cited: dict[str, str] = {}
    for folder in ("coop", "tests", "bench", "plugins"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for found in REQUIREMENT_ID.findall(path.read_text()):
                cited.setdefault(found, str(path.relative_to(ROOT)))
    return cited


def requirement_ids_defined() -> set[str]:
    page = (DOCS / "requirements.md").read_text()
    return set(re.findall(r"^\| ((?:OA|GQ|WS|CR|ER|EX|SY|LD|PL)-\d{2}) \|", page, re.M))


def test_every_requirement_id_in_code_resolves_to_the_requirements_page() -> None:
    defined = requirement_ids_defined()
    missing = {rid: where for rid, where in requirement_ids_cited().items() if rid not in defined}
    assert not missing, f"define these ids in docs/requirements.md (or cite a reason): {missing}"


def test_checks_can_fail() -> None:
    assert {"GQ-08", "PL-01"} <= set(requirement_ids_cited())
    assert "XX-01" not in requirement_ids_defined() and "OA-01" in requirement_ids_defined()
    assert "config_error" in error_codes() and "key_destroyed" in error_codes()
    assert {"COOP_MASTER_KEY", "COOP_DATA_DIR"} <= settings_read()
    assert {"coop migrate", "coop keys rotate"} <= set(cli_commands(build_parser()))
