"""``logging`` routed to the host's log.

go-plugin's host reads a plugin's stderr line by line; a line that is an
hclog JSON object keeps its level and key/value pairs and reaches the host's
logger tagged with plugin, worker slot and pid. Any other line is logged at
debug level (hidden by default). So the handler installed here writes one
JSON object per record, straight to file descriptor 2.

The host passes its log level in PLUGINPOOL_LOG_LEVEL (trace, debug, info,
warn, error, off); records below it are not written at all.
"""

import json
import logging
import os
import threading
import time

from ._context import state

TRACE = 5
logging.addLevelName(TRACE, "TRACE")

# PLUGINPOOL_LOG_LEVEL -> the root logger's level.
_LEVELS = {
    "trace": TRACE,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "off": logging.CRITICAL + 10,
}

# Attributes every LogRecord has; anything else came from extra={...}.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


def hclog_level(levelno):
    """The hclog level name for a logging level number."""
    if levelno < logging.DEBUG:
        return "trace"
    if levelno < logging.INFO:
        return "debug"
    if levelno < logging.WARNING:
        return "info"
    if levelno < logging.ERROR:
        return "warn"
    return "error"


def timestamp(t):
    """t as hclog's JSON timestamp, the one layout go-plugin's host parses:
    2006-01-02T15:04:05.000000Z07:00. Another layout makes the host treat
    the whole line as plain text."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%06dZ" % int((t % 1) * 1e6)


class HclogHandler(logging.Handler):
    """Writes records as hclog JSON lines to a file descriptor."""

    def __init__(self, fd=2):
        super().__init__()
        self.fd = fd
        self._write_lock = threading.Lock()

    def emit(self, record):
        try:
            entry = {
                "@level": hclog_level(record.levelno),
                "@message": record.getMessage(),
                "@timestamp": timestamp(record.created),
            }
            if record.name != "root":
                entry["logger"] = record.name
            cur = state.current
            if cur is not None:
                entry["task"] = cur.id
            for k, v in vars(record).items():
                if k not in _STANDARD and not k.startswith("_"):
                    entry[k] = v
            if record.exc_info:
                entry["exception"] = self.formatException(record.exc_info)
            line = json.dumps(entry, default=repr, ensure_ascii=False) + "\n"
            data = line.encode(errors="replace")
            with self._write_lock:
                while data:
                    data = data[os.write(self.fd, data):]
        except Exception:
            self.handleError(record)


def install(level_name):
    """Route the root logger to the host at the level it asked for.
    Stream handlers a plugin set up on stdout or stderr are replaced: their
    lines would reach the host as plain text (or, on stdout, be lost)."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler):
            root.removeHandler(h)
    root.addHandler(HclogHandler(2))
    root.setLevel(_LEVELS.get((level_name or "").strip().lower(), logging.WARNING))
    logging.captureWarnings(True)
