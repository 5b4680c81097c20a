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


def test_readme_gives_the_two_commands_and_links_into_docs() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make serve" in readme and "make test" in readme
    for link in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / link).exists(), f"README links to a missing page: {link}"


def test_links_between_docs_pages_resolve() -> None:
    for page in DOCS.glob("*.md"):
        for link in re.findall(r"\]\(([^)#:]+\.md)", page.read_text()):
            assert (page.parent / link).exists(), f"{page.name} links to a missing page: {link}"


def test_checks_can_fail() -> None:
    assert "config_error" in error_codes() and "key_destroyed" in error_codes()
    assert {"COOP_MASTER_KEY", "COOP_DATA_DIR"} <= settings_read()
    assert {"coop migrate", "coop keys rotate"} <= set(cli_commands(build_parser()))
