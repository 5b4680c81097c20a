"""Docs are part of the change: every error code, setting and CLI command is documented."""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import coop.errors
from coop.cli import build_parser
from coop.errors import CoopError
from tests.doc_blocks import Block, blocks, setup_code

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


# Python blocks in the docs pass `ruff check` with the project's rules. `make check` runs
# `ruff format --check .`, which formats them, but ruff does not lint markdown and silently
# skips a block that does not parse. Blocks are linted as a reader meets them and as
# tests/test_plugin_docs.py runs them: a page's unmarked python blocks as one module in
# reading order (a later block uses an earlier one's imports; E402 lets a page import where
# it first needs a name), the names its hidden `doc-test: setup` binds counting as defined; a
# block the tutorial writes to a file or runs as a test is a module of its own. Each block
# keeps its page's line numbers, so ruff's `docs/apps.md.py:236:5` is line 236 of docs/apps.md.
PYTHON_TAGS = {"python", "py", "python3", "py3"}


def markdown_pages() -> list[Path]:
    found = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *(ROOT / "plugins").glob("*/README.md")]
    return [*found, *sorted(DOCS.rglob("*.md"))]


def on_page_lines(shown: list[Block]) -> str:
    """The blocks' code as one module, each block on the lines it has on its page."""
    lines: list[str] = []
    for block in shown:
        gap = block.line - len(lines)  # its code starts after the fence line; gap >= 1
        # The page between blocks: two blank lines (as after imports), then comment lines (a
        # longer blank run after imports would be I001).
        lines += [""] * min(gap, 2) + ["#"] * (gap - 2)
        lines += block.code.splitlines()
    return "\n".join(lines) + "\n"


def python_modules(page: Path) -> list[str]:
    """The source of each module the page's python blocks make."""
    shown = [b for b in blocks(page) if b.lang in PYTHON_TAGS]
    together = [b for b in shown if not b.mark]
    alone = [[b] for b in shown if b.mark]
    return [on_page_lines(group) for group in ([together] if together else []) + alone]


def bound_names(source: str) -> set[str]:
    """The names a module binds at its top level (imports, classes, functions, assignments)."""
    names: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def ruff_problems(source: str, *, page: str = "docs/page.md", known: Iterable[str] = ()) -> str:
    """What `ruff check` with the project's configuration says of `source` ("" when clean).
    The `.py` suffix matters: given a `.md` name, ruff checks nothing and passes."""
    command = [
        sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise",
        "--config", f"builtins = {json.dumps(sorted(known))}", "--ignore", "E402",
        "--stdin-filename", f"{page}.py", "-",
    ]  # fmt: skip
    ran = subprocess.run(
        command, input=source, capture_output=True, text=True, cwd=ROOT, timeout=60, check=False
    )
    return "" if ran.returncode == 0 else ran.stdout + ran.stderr


def test_python_blocks_in_the_docs_pass_ruff_check() -> None:
    problems, linted = "", set()
    for page in markdown_pages():
        where = str(page.relative_to(ROOT))
        known = bound_names(setup_code(page))
        for source in python_modules(page):
            linted.add(where)
            problems += ruff_problems(source, page=where, known=known)
    assert not problems, "ruff check of the docs' python blocks:\n" + problems
    # The pages with python blocks today: fences the parser stops finding fail here.
    assert {"docs/apps.md", "docs/plugins/index.md", "docs/plugins/testing.md"} <= linted


def test_the_docs_lint_catches_what_ruff_reports() -> None:
    assert "F821" in ruff_problems("print(undefined_name)\n")
    assert ruff_problems("print(pytest)\n", known={"pytest"}) == ""
    assert "invalid-syntax" in ruff_problems("async def signature_only() -> None\n")
    assert "E401" in ruff_problems("import os, sys\n\nprint(os, sys)\n")
    assert "docs/apps.md.py:4:1: E401" in ruff_problems(
        on_page_lines([Block("apps.md", 2, "python", "\nimport os, sys\n\nprint(os, sys)\n")]),
        page="docs/apps.md",
    )
