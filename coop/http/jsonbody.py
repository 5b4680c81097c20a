"""Request bodies as JSON, with bounds on nesting and on the number of values: a deep or
crowded body is a client error, never a 500 and never a long stall of the event loop.

Python's json parser recurses once per level (RecursionError near 1,000 levels), and it holds
the GIL while it builds every list and dict of a body, so a 1 MiB body of tiny arrays costs
a third of a second wherever it runs. `loads` therefore scans the text first, at C speed
(strings dropped by one regex, brackets counted, innermost pairs removed level by level), and
refuses with `JsonRefused` before parsing: nesting deeper than MAX_DEPTH, more than
MAX_CONTAINERS arrays and objects, or more than MAX_SEPARATORS commas and colons.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 64
MAX_CONTAINERS = 10_000
MAX_SEPARATORS = 100_000

# A JSON string, unrolled so the regex engine runs without backtracking.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_INNERMOST = re.compile(rb"\[\]|\{\}")
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")


class JsonRefused(ValueError):
    """The body is JSON coop will not parse (HTTP 400); `message` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class JsonTooDeep(JsonRefused):
    def __init__(self) -> None:
        super().__init__(f"The JSON body is nested deeper than {MAX_DEPTH} levels.")


class JsonTooLarge(JsonRefused):
    def __init__(self) -> None:
        super().__init__(
            f"The JSON body holds more than {MAX_CONTAINERS} arrays and objects or "
            f"{MAX_SEPARATORS} values."
        )


def _too_deep(brackets: bytes) -> bool:
    """Whether balanced brackets nest deeper than MAX_DEPTH (unbalanced: not JSON, so False
    here and json.loads says so)."""
    for _ in range(MAX_DEPTH):
        if not brackets:
            return False
        shorter = _INNERMOST.sub(b"", brackets)  # one level per pass
        if len(shorter) == len(brackets):
            return False
        brackets = shorter
    return bool(brackets)


def check(raw: bytes) -> None:
    """Raise JsonRefused when the text is too deep or too crowded (linear, C-speed scans)."""
    outside = _STRING.sub(b"", raw)
    brackets = outside.translate(None, _NOT_BRACKET)
    if len(brackets) > 2 * MAX_CONTAINERS:
        raise JsonTooLarge()
    if _too_deep(brackets):  # at most MAX_DEPTH passes over at most 20,000 bytes
        raise JsonTooDeep()
    if outside.count(b",") + outside.count(b":") > MAX_SEPARATORS:
        raise JsonTooLarge()


def loads(body: bytes | str) -> Any:
    """The JSON value of `body`; ValueError (UnicodeDecodeError included) when it is not JSON,
    JsonRefused (a ValueError too) past the bounds of the module docstring."""
    check(body.encode() if isinstance(body, str) else body)
    try:
        return json.loads(body)
    except RecursionError:  # unbalanced and deep: the scan leaves that to the parser
        raise JsonTooDeep() from None


__all__ = ["MAX_DEPTH", "JsonRefused", "JsonTooDeep", "JsonTooLarge", "check", "loads"]
