"""Structured (JSON) logging that keeps secrets out of the log.

Callers log ids and codes only. As a second line of defence the formatter redacts every
`extra` field whose name looks secret (also inside dicts), and never prints raw bytes.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from datetime import UTC, datetime

from coop.config import Settings

# Standard record attributes, plus uvicorn's ANSI-coloured duplicate of the message.
_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",
}
_SECRET_WORDS = (
    "password",
    "passwd",
    "token",
    "secret",
    "key",
    "email",
    "cookie",
    "authorization",
    "credential",
    "bearer",
    "signature",
)
# Names that contain a secret word but only ever hold an identifier.
_SAFE_NAMES = frozenset({"kek", "kek_id", "key_id"})
REDACTED = "[redacted]"


def looks_secret(name: str) -> bool:
    lowered = name.lower()
    return lowered not in _SAFE_NAMES and any(word in lowered for word in _SECRET_WORDS)


def redact(name: str, value: object) -> object:
    """The loggable form of one field: redacted by name, bytes summarised, dicts walked."""
    if looks_secret(name):
        return REDACTED
    if isinstance(value, bytes | bytearray | memoryview):
        return f"[{len(value)} bytes]"
    if isinstance(value, Mapping):
        return {str(k): redact(str(k), v) for k, v in value.items()}
    return value


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, the extras, and any exception."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                body[key] = redact(key, value)
        if record.exc_info and record.exc_info[0] is not None:
            body["exc_type"] = record.exc_info[0].__name__
            body["trace"] = self.formatException(record.exc_info)
        return json.dumps(body, default=str)


# Library loggers that would otherwise write member data at INFO: httpx/httpcore log every
# outbound URL (member instance hosts, GitHub logins in API paths), uvicorn.access logs query
# strings (OAuth codes), and the database drivers log SQL.
QUIET_LOGGERS = ("uvicorn.access", "httpx", "httpcore", "tortoise", "aiosqlite", "asyncpg")


def configure_logging(settings: Settings) -> None:
    """JSON lines on stderr at INFO; chatty libraries only from WARNING."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
