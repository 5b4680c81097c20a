"""Scopes as the consent page (coop.oauth) and the Apps page show them: each in plain words
with the app's purpose, and for a score the levels the member may choose (exact -> band ->
nothing; a threshold -> nothing)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from coop.apps.terms import Terms
from coop.consent.disclosure import HISTORY, LevelChoice, level_choices, parse_score_scope
from coop.consent.scopes import describe_scope
from coop.scoring import declared
from coop.scoring.bands import band_example
from coop.scoring.validate import ScorerMeta


@dataclass(frozen=True)
class ScopeRow:
    """One row of the consent page. `choices` is empty for a plain yes/no scope (a
    checkbox); for a score it lists the levels to choose from, the requested one first."""

    scope: str
    words: str
    purpose: str | None
    scorer: str = ""
    choices: Sequence[LevelChoice] = ()
    # What the scorer reads, in the Scores page's words ("posts you published: dates only");
    # empty when not known here, and `missing` when the scorer is not installed.
    reads: Sequence[str] = ()
    missing: bool = False


def example_band(bands: Mapping[str, tuple[float, ...]], scorer: str) -> str | None:
    """A band of the scorer to show ("60-70"), if its bands are known here."""
    edges = bands.get(scorer)
    return band_example(edges) if edges else None


def consent_rows(
    scopes: Sequence[str],
    terms: Terms,
    bands: Mapping[str, tuple[float, ...]],
    scorers: Mapping[str, ScorerMeta] | None = None,
) -> list[ScopeRow]:
    """A row per scope; a score's `choices` start with its own level (on the Apps page the
    ones after it are what the member may lower it to). With `scorers` (the installed ones by
    name) each score row also says what its scorer reads, or that it is not installed."""
    rows = []
    for scope in scopes:
        parsed = parse_score_scope(scope)
        purpose = terms.purpose_for(scope)
        if parsed is None or parsed.level == HISTORY:
            rows.append(ScopeRow(scope, describe_scope(scope), purpose))
            continue
        example = example_band(bands, parsed.scorer)
        rows.append(
            ScopeRow(
                scope,
                describe_scope(scope, band_example=example),
                purpose,
                scorer=parsed.scorer,
                choices=level_choices(scope, example),
                reads=_reads(scorers.get(parsed.scorer)) if scorers is not None else (),
                missing=scorers is not None and parsed.scorer not in scorers,
            )
        )
    return rows


def _reads(meta: ScorerMeta | None) -> tuple[str, ...]:
    return tuple(declared.describe(meta.read_fields())) if meta is not None else ()
