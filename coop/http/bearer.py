"""Reading a bearer token from a request (RFC 6750 §2.1: the Authorization header only)."""

from __future__ import annotations

from starlette.types import Scope

MAX_AUTH_HEADER = 512


def bearer_token(scope: Scope) -> tuple[str | None, bool]:
    """(token, sent): the token from `Authorization: Bearer`, and whether any credentials
    came at all. Query strings and cookies are never read (RFC 6750 §2.1 only); a repeated,
    oversized or malformed header counts as credentials sent but yields no token."""
    values = [v for k, v in scope.get("headers", []) if k == b"authorization"]
    if not values:
        return None, False
    if len(values) != 1 or len(values[0]) > MAX_AUTH_HEADER:
        return None, True
    scheme, _, token = values[0].decode("latin-1").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None, True
    return token, True
