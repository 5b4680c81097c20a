"""Global object ids: opaque, typed, and meaningless outside the caller's own view.

An id is base64url("<Type>:<key>"). Keys of member-owned objects are either random UUIDs or
derived from the caller's pairwise subject, so an id reveals no internal primary key and an
id seen by one app means nothing to another (GQ-14).
"""

from __future__ import annotations

import base64
import binascii

TYPES = frozenset({"Viewer", "Score", "Connection", "Grant", "Proposal"})


def encode(type_name: str, key: str) -> str:
    raw = f"{type_name}:{key}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(global_id: str) -> tuple[str, str] | None:
    """(type, key), or None for anything malformed (answered as NOT_FOUND, like the rest)."""
    if not global_id or len(global_id) > 200:
        return None
    try:
        raw = base64.urlsafe_b64decode(global_id + "=" * (-len(global_id) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    type_name, sep, key = raw.partition(":")
    if not sep or type_name not in TYPES or not key:
        return None
    return type_name, key
