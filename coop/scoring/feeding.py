"""What a scorer is given: only the kinds it reads and their declared fields (text only when
it asks), and which of those kinds a run lacked. One rule for the server, `coop plugins run`
and `coop.testing`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from coop.scoring.spec import InputRecord
from coop.scoring.validate import ScorerMeta


def visible(meta: ScorerMeta, records: Iterable[InputRecord]) -> list[InputRecord]:
    """What the server gives the scorer: only the kinds it reads, of those only the fields
    it declares (`Scorer.fields`), text only if it asks."""
    return [meta.visible(r) for r in records if r.kind in meta.reads]


def unfed_kinds(reads: Sequence[str], kinds_given: Iterable[str]) -> list[str]:
    """The kinds the scorer reads of which a run with records got none (it scores without
    them, silently). A run without any record lacks nothing: an empty input is no surprise."""
    given = set(kinds_given)
    if not given:
        return []
    return [kind for kind in reads if kind not in given]
