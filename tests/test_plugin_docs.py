"""Every code block in docs/plugins runs (or says why it does not): python blocks as a test
module per page, toml and json blocks parsed (the entry point block against the scaffold);
the tutorial's shell steps run in tests/test_tutorial.py. See tests/doc_blocks.py."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from coop.scoring.scaffold import scaffold
from tests.doc_blocks import PLUGIN_DOCS, Block, all_blocks, blocks, setup_code

MAX_ILLUSTRATIVE = 8  # keep the blocks nobody runs few
TUTORIAL = "index.md"

# After a page's blocks: every scorer class they define passes the load-time contract check.
CHECK_SCORERS = """
from coop.testing import check_scorer as _check_scorer
for _value in list(globals().values()):
    if isinstance(_value, type) and hasattr(_value, "api_version"):
        _check_scorer(_value)
"""


def python_pages() -> list[str]:
    return sorted({b.page for b in all_blocks() if b.lang == "python" and not b.mark})


def page_module(page: Path) -> str:
    parts = [setup_code(page)]
    parts += [b.code for b in blocks(page) if b.lang == "python" and not b.mark]
    return "\n\n".join([*parts, CHECK_SCORERS])


@pytest.mark.parametrize("page", python_pages())
def test_the_python_blocks_of_a_page_run(page: str, tmp_path: Path) -> None:
    source = page_module(PLUGIN_DOCS / page)
    module = tmp_path / f"test_doc_{page.replace('.', '_')}.py"
    module.write_text(source)
    tests = source.count("\ndef test_")
    if tests:
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", module.name]
    else:
        command = [sys.executable, module.name]
    ran = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    if tests:
        assert f"{tests} passed" in ran.stdout, ran.stdout


def test_the_entry_point_block_is_what_the_scaffold_writes(tmp_path: Path) -> None:
    toml = [b for b in blocks(PLUGIN_DOCS / TUTORIAL) if b.lang == "toml"]
    assert toml
    written = tomllib.loads((scaffold("consistency", tmp_path) / "pyproject.toml").read_text())
    for block in toml:
        shown = tomllib.loads(block.code)
        points = shown["project"]["entry-points"]["coop.scorers"]
        assert points.items() <= written["project"]["entry-points"]["coop.scorers"].items()


def test_json_blocks_parse() -> None:
    found = [b for b in all_blocks() if b.lang == "json"]
    assert found
    for block in found:
        json.loads(block.code)


def unrun(block: Block) -> str:
    """Why a block would be run by no test ("" when one runs it)."""
    if block.mark == "illustrative":
        return "" if block.arg else "illustrative without a reason"
    if block.mark in ("file", "tutorial-test") or block.lang == "console":
        return "" if block.page == TUTORIAL else "only the tutorial's steps run"
    if block.lang in ("python", "toml", "json"):
        return ""
    return f"a {block.lang} block no test runs: mark it illustrative (with why) or make it a step"


def test_every_block_is_run_or_marked_illustrative_with_a_reason() -> None:
    problems = {b.where: why for b in all_blocks() if (why := unrun(b))}
    assert not problems, problems
    illustrative = [b.where for b in all_blocks() if b.mark == "illustrative"]
    assert 0 < len(illustrative) <= MAX_ILLUSTRATIVE, illustrative


def test_the_check_catches_an_unmarked_output_block(tmp_path: Path) -> None:
    page = tmp_path / "index.md"
    page.write_text("```\nsome output\n```\n\n<!-- doc-test: illustrative -->\n```\nx\n```\n")
    found = blocks(page)
    assert [unrun(b) for b in found] == [
        "a text block no test runs: mark it illustrative (with why) or make it a step",
        "illustrative without a reason",
    ]
