"""The fenced code blocks of docs/plugins/*.md, with what the doc tests do with each.

A block runs unless the line right above it says otherwise, in an HTML comment (invisible
on the rendered page):

- `<!-- doc-test: illustrative: why -->`  sample output, a diagram, a step that publishes:
  not run (keep these few; tests/test_plugin_docs.py counts them).
- `<!-- doc-test: file NAME -->`  the tutorial writes the block to NAME in its folder.
- `<!-- doc-test: tutorial-test -->`  a python test that runs in the tutorial's own project
  (tests/test_tutorial.py appends it to the scaffold's tests).
- `<!-- doc-test: setup` ... `-->`  (anywhere) hidden python run before the page's blocks.

Python blocks run as one pytest module per page (setup first); blocks whose lines start with
`$ ` are the tutorial's shell steps, their other lines the output expected (`…` matches
anything); toml blocks are parsed.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_DOCS = ROOT / "docs" / "plugins"

# A fence may be indented (a block inside a list item); its closing fence is indented alike.
_FENCE = re.compile(r"^([ \t]*)```([\w-]*)[^\n]*\n(.*?)^\1```[ \t]*$", re.M | re.S)
_MARK = re.compile(r"<!-- doc-test: ([\w-]+)(?::? ?(.*?))? -->\s*$")
_SETUP = re.compile(r"<!-- doc-test: setup\n(.*?)-->", re.S)


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    lang: str  # "python", "toml", "json", "console" (has `$ ` lines) or "text"
    code: str
    mark: str = ""  # illustrative | file | tutorial-test | ""
    arg: str = ""  # the reason, or the file name

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def _lang(info: str, code: str) -> str:
    if info:
        return info
    return "console" if any(line.startswith("$ ") for line in code.splitlines()) else "text"


def blocks(page: Path) -> list[Block]:
    text = page.read_text()
    found = []
    for match in _FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mark = _MARK.search(before)
        code = textwrap.dedent(match.group(3))
        found.append(
            Block(
                page=page.name,
                line=text.count("\n", 0, match.start()) + 1,
                lang=_lang(match.group(2), code),
                code=code,
                mark=mark.group(1) if mark else "",
                arg=(mark.group(2) or "") if mark else "",
            )
        )
    return found


def setup_code(page: Path) -> str:
    return "\n".join(_SETUP.findall(page.read_text()))


def all_blocks() -> list[Block]:
    return [b for page in sorted(PLUGIN_DOCS.glob("*.md")) for b in blocks(page)]


@dataclass(frozen=True)
class Step:
    command: str
    expected: list[str]


def steps(block: Block) -> list[Step]:
    """A console block's commands, each with the output lines shown after it."""
    found: list[Step] = []
    for line in block.code.splitlines():
        if line.startswith("$ "):
            found.append(Step(line[2:].split("  #")[0].strip(), []))
        elif found and line.strip():
            found[-1].expected.append(line)
    return found


def _squeeze(line: str) -> str:
    return " ".join(line.split())


def output_pattern(line: str) -> re.Pattern[str]:
    """An expected output line: `…` matches anything, any run of spaces any spacing."""
    return re.compile(".*?".join(re.escape(part) for part in _squeeze(line).split("…")))


def missing_lines(expected: list[str], output: str) -> list[str]:
    """The expected lines not found, in this order, among the output's lines."""
    lines = [_squeeze(line) for line in output.splitlines()]
    at, missing = 0, []
    for want in expected:
        pattern = output_pattern(want)
        for i in range(at, len(lines)):
            if pattern.search(lines[i]):
                at = i + 1
                break
        else:
            missing.append(want)
    return missing
