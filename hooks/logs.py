"""Structured logs: every line of the `hooks` loggers is one JSON object on stderr.

A hook call logs one line with its route, parent, outcome, status code, duration and number of
children. Nothing from a request body beyond the parent's namespace and name is ever logged,
so no Secret value, token or password can reach a log line.
"""
import logging
import sys
import time

import orjson


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def setup(level: str = "INFO") -> None:
    """Send the `hooks` loggers to stderr as JSON lines (once per process)."""
    root = logging.getLogger("hooks")
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
        # Records still propagate: under gunicorn the root logger has no handler (nothing is
        # printed twice), and under pytest its capture handler sees them.
    root.setLevel(level.upper())


def hook_call(log: logging.Logger, **fields) -> None:
    log.info("hook call", extra={"fields": fields})
