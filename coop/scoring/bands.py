"""Score bands: the ranges an app learns at the `score:NAME:band` level. A scorer may declare
its band edges (`Scorer.bands`, checked by `check_bands`); otherwise its declared range is cut
into ten equal bands."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

DEFAULT_BANDS = 10
MAX_BANDS = 100


def bands_of(bounds: tuple[float, float], declared: Sequence[float] | None) -> tuple[float, ...]:
    """The band edges of a scorer: its declared ones, else ten equal bands of its range."""
    if declared:
        return tuple(float(e) for e in declared)
    low, high = float(bounds[0]), float(bounds[1])
    inner = (low + (high - low) * i / DEFAULT_BANDS for i in range(1, DEFAULT_BANDS))
    return (low, *inner, high)


def band_of(value: float, edges: Sequence[float]) -> tuple[float, float]:
    """The band [low, high) the value falls in; the last band includes its upper edge."""
    for low, high in itertools.pairwise(edges):
        if value < high:
            return low, high
    return edges[-2], edges[-1]


def check_bands(edges: object, bounds: tuple[float, float]) -> str | None:
    """Why declared band edges are unusable (a scorer contract breach), or None: finite
    numbers, strictly increasing, from the range's low end to its high end."""
    if not isinstance(edges, tuple | list) or not 2 <= len(edges) <= MAX_BANDS + 1:
        return f"`bands` must be a tuple of 2 to {MAX_BANDS + 1} edges"
    if not all(isinstance(e, int | float) and not isinstance(e, bool) for e in edges):
        return "`bands` must hold numbers"
    values = [float(e) for e in edges]
    if not all(math.isfinite(v) for v in values):
        return "`bands` must be finite"
    if any(b <= a for a, b in itertools.pairwise(values)):
        return "`bands` must be strictly increasing"
    if (values[0], values[-1]) != (float(bounds[0]), float(bounds[1])):
        return "`bands` must start at the low end of `range` and end at its high end"
    return None


def band_example(edges: Sequence[float]) -> str:
    """The middle band, as the consent page shows an example ("60-70", with an en dash)."""
    low, high = band_of((edges[0] + edges[-1]) / 2, edges)
    return f"{number(low)}\u2013{number(high)}"


def number(value: float) -> str:
    """A band edge as people write it (60, not 60.0)."""
    return f"{value:g}" if value != int(value) else str(int(value))
