"""Structured (JSON) logging. Log records never carry secrets or member plaintext: callers log
ids and codes only, and this formatter drops any `extra` key that looks like a secret."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from coop.config import Settings

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None)))
_SECRET_WORDS = ("password", "token", "secret", "key", "email", "cookie", "authorization")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key in _RESERVED or key.startswith("_"):
                continue
            if any(word in key.lower() for word in _SECRET_WORDS) and key != "kek":
                body[key] = "[redacted]"
            else:
                body[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            body["exc_type"] = record.exc_info[0].__name__
            body["trace"] = self.formatException(record.exc_info)
        return json.dumps(body, default=str)


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    for noisy in ("uvicorn.access", "tortoise", "aiosqlite", "asyncpg"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
