"""`coop plugins new NAME`: write a ready-to-install scorer distribution into a folder."""

from __future__ import annotations

import re
from pathlib import Path

from coop.errors import ConflictError, InvalidInputError
from coop.scoring.spec import NAME_PATTERN

PYPROJECT = """\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.1.0"
description = "A coop scorer: {name}."
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["coop"]

[project.optional-dependencies]
test = ["coop[test]"]

[project.entry-points."coop.scorers"]
{name} = "{package}:{cls}"

[tool.setuptools.packages.find]
where = ["src"]

[tool.pytest.ini_options]
pythonpath = ["src"]
"""

MODULE = '''\
"""The `{name}` scorer for coop. Import only coop.scoring.spec here (and coop.testing in tests)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from coop.scoring.spec import API_VERSION, Contribution, InputRecord, ScoreResult

WINDOW = timedelta(days=30)


class {cls}:
    """Counts the posts published in the last 30 days (replace with your own idea)."""

    api_version = API_VERSION
    name = "{name}"
    version = "0.1.0"  # bump on every change that can move a score
    title = "{title}"
    description = "How many posts you published in the last 30 days."
    reads = ("post",)
    range = (0.0, 100.0)
    needs_text = False
    homepage = ""

    def score(self, records: Sequence[InputRecord], now: datetime) -> ScoreResult:
        recent = sorted(
            (r for r in records if now - WINDOW <= r.occurred_at <= now),
            key=lambda r: (r.occurred_at, r.ref),
        )
        value = float(min(100, len(recent)))
        return ScoreResult(
            value=value,
            contributions=[
                Contribution(amount=1.0, reason=f"post of {{r.occurred_at:%Y-%m-%d}}", ref=r.ref)
                for r in recent[-50:]
            ],
            reasons=[f"You published {{len(recent)}} posts in the last 30 days."],
        )
'''

TESTS = '''\
"""Tests for the `{name}` scorer, with coop.testing (no server needed)."""

from __future__ import annotations

from datetime import datetime

import pytest
from {package} import {cls}

from coop.testing import (
    assert_deterministic,
    assert_discovered,
    assert_explains,
    check_scorer,
    post,
    run_in_sandbox,
    run_scorer,
    sandbox_isolates,
)


def test_contract_is_valid() -> None:
    assert check_scorer({cls}).name == "{name}"


def test_counts_recent_posts_and_explains_them() -> None:
    records = [post(days_ago=1), post(days_ago=2), post(days_ago=40)]
    result = run_scorer({cls}, records)
    assert result.value == 2
    assert_explains(result, records, min_contributions=2, mentions=["2 posts"])


def test_is_deterministic() -> None:
    assert_deterministic({cls}, [post(days_ago=d) for d in range(10)])


def test_the_installed_entry_point_is_this_scorer() -> None:
    assert_discovered({cls})  # after `pip install -e ".[test]"`


def test_scores_the_same_in_the_servers_sandbox(now: datetime) -> None:
    if not sandbox_isolates():
        pytest.skip(
            "SKIPPED the sandbox run: bubblewrap is not installed or this is not root, so "
            "this machine cannot isolate like the server (apt-get install bubblewrap)"
        )
    records = [post(days_ago=1, now=now), post(days_ago=40, now=now)]
    assert run_in_sandbox("{name}", records, now) == run_scorer({cls}, records, now)
'''

README = """\
# {dist}

A scorer plugin for coop (a consent-first data cooperative server) named `{name}`.

- Reads: `post` records (it uses their dates only; declare
  `fields = {{"post": ("occurred_at",)}}` to read nothing else).
- Range: 0 to 100.
- Formula: the number of posts in the last 30 days, capped at 100.

## Develop

```
pip install -e ".[test]"
pytest tests
```

Once installed next to coop, `coop plugins list` shows `{name}`; members enable it on the
Scorers page. Publish with `python -m build` and `twine upload dist/*`. See coop's
docs/plugins/ for the contract and the testing guide.
"""


def scaffold(name: str, parent: Path) -> Path:
    """Create `coop-score-<name>/` under `parent`; returns its path."""
    if not re.fullmatch(NAME_PATTERN, name):
        raise InvalidInputError(
            f"A scorer name must match {NAME_PATTERN} (lowercase, starting with a letter)."
        )
    dist = f"coop-score-{name.replace('_', '-')}"
    package = f"coop_score_{name.replace('-', '_')}"
    cls = "".join(part.capitalize() for part in re.split(r"[-_]", name)) + "Scorer"
    root = parent / dist
    if root.exists():
        raise ConflictError(f"{root} already exists.")
    values = {
        "name": name,
        "dist": dist,
        "package": package,
        "cls": cls,
        "title": name.replace("-", " ").replace("_", " ").capitalize(),
    }
    files = {
        root / "pyproject.toml": PYPROJECT,
        root / "README.md": README,
        root / "src" / package / "__init__.py": MODULE,
        root / "tests" / f"test_{package}.py": TESTS,
    }
    for path, template in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**values))
    return root
