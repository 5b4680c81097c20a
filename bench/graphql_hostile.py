"""Validation time of hostile GraphQL documents, as ratios to a plain query in the same run.

Prints, per family and size, the time coop takes to parse and validate a new document text
(no cache), divided by the time for `{ viewer { id } }`; and, for the fragment families,
the same with strawberry's QueryDepthLimiter and MaxAliasesLimiter in place of coop's linear
rules, without coop's work budget (capped at a size where they still finish).
Usage: python bench/graphql_hostile.py
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# bench/graphql.py is named like the `graphql` package: keep this folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]
sys.path.insert(0, str(ROOT))

from strawberry.extensions.max_aliases import create_validator as aliases  # noqa: E402
from strawberry.extensions.query_depth_limiter import create_validator as depth  # noqa: E402

import coop.api.operation as operation  # noqa: E402
from coop.api import budget  # noqa: E402
from coop.api.schema import schema  # noqa: E402
from tests.api.test_hostile_documents import FAMILIES, chain, diamond  # noqa: E402
from tests.api.test_hostile_server import costly_document  # noqa: E402

OURS = operation.RULES, operation.LIMIT_RULES
THEIRS = (
    (*operation.RULES, depth(10, None, None), aliases(15)),
    (operation.SelectionBreadth,),
)


def seconds(text: str, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        ops = operation.Operations(schema)
        start = time.perf_counter()
        ops.prepare(text)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    base_budget = budget.WORK_BASE
    base = seconds("{ viewer { id } }", repeat=50)
    print(f"baseline {{ viewer {{ id }} }}: {base * 1e3:.3f} ms (ratios below are to this)")
    rows: list[tuple[str, Callable[[int], str], tuple[int, ...]]] = [
        (name, make, sizes) for name, (make, sizes) in sorted(FAMILIES.items())
    ]
    for name, make, sizes in rows:
        ratios = " ".join(f"n={n}:{seconds(make(n)) / base:8.1f}x" for n in sizes)
        print(f"coop   {name:16s} {ratios}")
    print(f"coop   {'costly_document':16s} {seconds(costly_document(0)) / base:8.1f}x")
    for name, make in (("chain", chain), ("diamond", diamond)):
        for n in (8, 12, 16):
            operation.RULES, operation.LIMIT_RULES = THEIRS
            budget.WORK_BASE = 10**12  # strawberry's walk is what is measured here
            theirs = seconds(make(n), repeat=1)
            operation.RULES, operation.LIMIT_RULES = OURS
            budget.WORK_BASE = base_budget
            ours = seconds(make(n))
            print(
                f"{name} n={n:2d}: strawberry's rules {theirs / base:10.1f}x, "
                f"coop's {ours / base:6.1f}x (strawberry/coop {theirs / ours:8.1f})"
            )


if __name__ == "__main__":
    main()
