"""Logging setup: plain text by default, JSON lines with ``CODETETHER_LOG_JSON=true``.

Request and task ids travel in ``contextvars`` so every line of a request carries them.

Log lines cannot be forged: in plain text every control character of a message (and of its
arguments, such as a request path decoded from ``%0a`` or ``%00``) is written as an escape
(``\\n``, ``\\x00``, ``\\u2028``), so one record is always one line. JSON lines get the same
from the JSON encoder. Tracebacks keep their own line breaks.

Capability tokens never reach a log: the token segment of ``/r/<token>`` (reply links),
``/console/link/<token>`` (sign-in links) and ``/console/verify/<token>`` (address confirmations)
is written as ``[redacted]`` wherever a message carries such a path (:func:`redact_paths`): the
access log, a refusal logged by the console, an HTTP client's request line.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
task_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("task_id", default=None)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.task_id = getattr(record, "task_id", None) or task_id_var.get()
        return True


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(m: re.Match[str]) -> str:
    ch = m.group(0)
    named = _NAMED.get(ch)
    if named:
        return named
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """``text`` with every control character (C0, DEL, C1, U+2028/2029) written as an escape."""
    return _CONTROL.sub(_escape_char, text)


# Whoever holds one of these paths can act on it without a key; the segment after the prefix is
# the token. Matched anywhere in a message, so a full URL is covered too.
_CAPABILITY_PATH = re.compile(r"(/r/|/console/link/|/console/verify/|[?&]suggestion=)[^/?&#\s\"']+")


def redact_paths(text: str) -> str:
    """``text`` with the token of every capability path (``/r/…``, ``/console/link/…``,
    ``/console/verify/…``) replaced by ``[redacted]``."""
    return _CAPABILITY_PATH.sub(r"\1[redacted]", text)


class PlainFormatter(logging.Formatter):
    """``time level logger: message`` with capability tokens redacted and control characters escaped."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's API
        record.message = escape_controls(redact_paths(record.message))
        record.name = escape_controls(record.name)
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact_paths(record.getMessage()),
        }
        for key in ("request_id", "task_id"):
            value = getattr(record, key, None)
            if value:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


def setup_logging(settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ContextFilter())
    if settings.log_json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(PlainFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("temporalio").setLevel(logging.WARNING)
