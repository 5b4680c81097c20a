"""Request bodies as JSON, with a nesting bound: a deep body is a client error, never a 500.

Python's json parser recurses once per level and raises RecursionError near 1,000 levels;
values a little shallower then recurse again wherever they are walked (graphql-core coerces
variables recursively). `loads` refuses anything nested deeper than MAX_DEPTH with
`JsonTooDeep`, in time linear in the body: the C parser's own bound first, then one
iterative walk over the containers (skipped when the body has too few brackets to be deep).
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64


class JsonTooDeep(ValueError):
    """The body nests arrays/objects deeper than MAX_DEPTH (HTTP 400)."""

    def __init__(self) -> None:
        super().__init__(f"The JSON body is nested deeper than {MAX_DEPTH} levels.")
        self.message = str(self)


def _too_deep(value: Any) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def loads(body: bytes | str) -> Any:
    """The JSON value of `body`; ValueError (UnicodeDecodeError included) when it is not JSON,
    JsonTooDeep when it is nested deeper than MAX_DEPTH."""
    try:
        value = json.loads(body)
    except RecursionError:
        raise JsonTooDeep() from None
    raw = body.encode() if isinstance(body, str) else body
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return value
    if isinstance(value, dict | list) and _too_deep(value):
        raise JsonTooDeep()
    return value


__all__ = ["MAX_DEPTH", "JsonTooDeep", "loads"]
