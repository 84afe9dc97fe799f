"""JSON logs on stderr, one object per line, with patients' phone numbers and e-mails masked,
no terminal colours, the request id on every line written while a request is served, and
other projects' INFO chatter kept out unless LOG_LEVEL is DEBUG."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from typing import Any

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
# Phone-like runs: an optional +, then 7+ digits possibly split by spaces, dots, dashes, brackets.
_PHONE = re.compile(r"(?<![\w-])\+?\(?\d(?:[\s().-]{0,2}\d){6,}(?![\w-])")
# UUIDs and ISO dates look like digit runs to the phone pattern; keep them readable in logs.
_KEEP = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?"
)


def _mask_phone(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return ("+" if match.group(0).startswith("+") else "") + "*" * (len(digits) - 2) + digits[-2:]


def mask(text: str) -> str:
    """Mask e-mails and phone numbers, leaving UUIDs and dates alone."""
    kept: list[str] = []

    def _hold(match: re.Match[str]) -> str:
        kept.append(match.group(0))
        return f"\x00{len(kept) - 1}\x00"

    text = _KEEP.sub(_hold, text)
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    text = _PHONE.sub(_mask_phone, text)
    return re.sub(r"\x00(\d+)\x00", lambda m: kept[int(m.group(1))], text)


_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
# uvicorn adds `color_message`, its message with terminal colour codes, for its own console
# formatter; a log collector would keep the escape codes as text.
_DROPPED = frozenset({"color_message"})
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# Loggers whose INFO lines an operator reads: this service's, and the server's (started,
# listening, stopping). Any other project logs here from WARNING up, or everything at DEBUG.
_OWN = ("app", "uvicorn")


def _clean(text: str) -> str:
    return mask(_ANSI.sub("", text))


class _QuietThirdParties(logging.Filter):
    """Keeps other projects' lines below WARNING out (the MCP SDK's "Terminating session:
    None" on every stateless request, a client library's every request) unless the log
    level is DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING or logging.getLogger().level <= logging.DEBUG:
            return True
        return record.name.split(".", 1)[0] in _OWN


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": _clean(record.getMessage()),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _RESERVED and key not in _DROPPED and not key.startswith("_"):
                entry[key] = _clean(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["traceback"] = _clean(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(_QuietThirdParties())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's own handlers would print plain text; route its loggers through ours, at
    # LOG_LEVEL (uvicorn sets its own level otherwise). Whether the access log is on stays
    # uvicorn's decision (`access_log=`).
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).propagate = True
        logging.getLogger(name).setLevel(logging.NOTSET)
    for noisy in ("alembic", "pgserver"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # The chattiest, quieted where they log (the filter would drop each line after it was
    # made): the MCP SDK logs at INFO on every stateless request. At DEBUG they say it all.
    quiet = logging.NOTSET if root.level <= logging.DEBUG else max(logging.WARNING, root.level)
    for chatty in ("mcp", "httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(quiet)
