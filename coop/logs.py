"""Structured (JSON) logging that keeps secrets out of the log.

Callers log ids and codes only. As a second line of defence the formatter redacts every
`extra` field whose name looks secret (also inside dicts), and never prints raw bytes.
"""

from __future__ import annotations

import json
import logging
import re
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
_PLAIN = frozenset({str, int, float, bool, type(None)})


_verdicts: dict[str, bool] = {}


def looks_secret(name: str) -> bool:
    """Whether a field called `name` may hold a secret (remembered per name: extras are named
    in code, so the set of names is small)."""
    verdict = _verdicts.get(name)
    if verdict is None:
        lowered = name.lower()
        verdict = lowered not in _SAFE_NAMES and any(word in lowered for word in _SECRET_WORDS)
        if len(_verdicts) < 4096:
            _verdicts[name] = verdict
    return verdict


def redact(name: str, value: object) -> object:
    """The loggable form of one field: redacted by name, bytes summarised, dicts walked."""
    if looks_secret(name):
        return REDACTED
    if type(value) in _PLAIN:  # most fields: nothing to look into
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return f"[{len(value)} bytes]"
    if isinstance(value, Mapping):
        return {str(k): redact(str(k), v) for k, v in value.items()}
    return value


_encode = json.JSONEncoder(default=str).encode


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
            if key not in _RESERVED and key[0] != "_":
                body[key] = redact(key, value)
        if record.exc_info and record.exc_info[0] is not None:
            body["exc_type"] = record.exc_info[0].__name__
            body["trace"] = self.formatException(record.exc_info)
        return _encode(body)


# Library loggers that would otherwise write member data at INFO: httpx/httpcore log every
# outbound URL (member instance hosts, GitHub logins in API paths), uvicorn.access logs query
# strings (OAuth codes), and the database drivers log SQL.
QUIET_LOGGERS = ("uvicorn.access", "httpx", "httpcore", "tortoise", "aiosqlite", "asyncpg")


class _NoDriverTraces(logging.Filter):
    """The database driver logs its own connection faults (a pool that cannot reconnect
    while PostgreSQL restarts) with a traceback: keep the line and the error's type, drop
    the trace. It is the database's state, not a bug in coop (docs/operations.md)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[0] and self.is_driver_fault(record):
            record.error = record.exc_info[0].__name__
            record.exc_info = None
            record.exc_text = None
        return True

    @staticmethod
    def is_driver_fault(record: logging.LogRecord) -> bool:
        if record.name.startswith("asyncpg"):
            return True
        # The job queue's "Database error." (its connector's wrapper for a connection fault).
        kind = record.exc_info[0] if record.exc_info else None
        return record.name.startswith("procrastinate") and getattr(kind, "__name__", "") == (
            "ConnectorException"
        )


# A job's call string, `coop.score[12](member_id='…', scorer='reach')`: its name and id say
# which job it was; its arguments are member ids (ER-04: an erased member leaves no trace).
_JOB_CALL = re.compile(r"(\b[\w.]+\[\d+\])\([^)]*\)")
_JOB_ARGUMENTS = ("task_kwargs", "call_string", "args", "kwargs")


class _NoJobArguments(logging.Filter):
    """The job queue logs each job with its arguments (in the message and in a `job` extra):
    keep the task name, id, status and timing; drop the arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("procrastinate"):
            message = record.getMessage()
            scrubbed = _JOB_CALL.sub(r"\1(…)", message)
            if scrubbed != message:
                record.msg, record.args = scrubbed, None
            job = getattr(record, "job", None)
            if isinstance(job, Mapping):
                record.job = {k: v for k, v in job.items() if k not in _JOB_ARGUMENTS}
        return True


def configure_logging(settings: Settings) -> None:
    """JSON lines on stderr at INFO; chatty libraries only from WARNING."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    # The JSON lines never show where a call was made or by which thread or process, so
    # records need not collect it (the logging HOWTO's "Optimization" section).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    handler.addFilter(_NoDriverTraces())
    handler.addFilter(_NoJobArguments())
