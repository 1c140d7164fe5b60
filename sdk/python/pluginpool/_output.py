"""Where a plugin's printing goes.

- ``print()`` inside a task: captured, and sent back with the item's result
  as its output lines; the host writes them whole, in input order, just
  before the result, so output of different workers never interleaves.
- Anything else written to stdout (``print()`` outside a task, a C library
  writing to file descriptor 1): forwarded to the host through go-plugin's
  GRPCStdio stream, which the host prints line by line tagged with the
  worker. After the handshake, file descriptor 1 is a pipe read here:
  go-plugin's host discards a plugin's real stdout once it has read the
  handshake line.
- File descriptor 2 stays the process's stderr, and ``sys.stderr`` writes
  to it unbuffered: the host reads it for log lines (see _log), keeps its
  last lines for crash reports, and shows the other lines to the user,
  tagged with the worker. Python's own fatal errors (faulthandler, an
  uncaught exception) go there too.
"""

import collections
import io
import os
import threading

from ._context import state

STDOUT = 1  # go-plugin's StdioData.Channel
STDERR = 2


class Stray:
    """Output written outside a task, queued for the GRPCStdio stream. If
    the host never reads it, the oldest chunks are dropped beyond a bound."""

    def __init__(self, limit=4096):
        self._q = collections.deque(maxlen=limit)
        self._cond = threading.Condition()

    def put(self, channel, data):
        if not data:
            return
        with self._cond:
            self._q.append((channel, data))
            self._cond.notify()

    def empty(self):
        return not self._q

    def get(self, timeout):
        """The next chunk, or None after timeout seconds."""
        with self._cond:
            if not self._q and not self._cond.wait(timeout):
                return None
            return self._q.popleft() if self._q else None


def encode_line(s):
    try:
        return s.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return s.encode("utf-8", "backslashreplace")


def split_lines(chunks):
    """The lines of what a task printed, without newlines; a last line
    without one counts."""
    text = "".join(chunks)
    if text.endswith("\n"):
        text = text[:-1]
    return [encode_line(line) for line in text.split("\n")]


class _Text(io.TextIOBase):
    """A text stream that takes str writes; fd is what fileno() says
    (subprocesses handed the stream write there)."""

    def __init__(self, fd):
        super().__init__()
        self._fd = fd

    def writable(self):
        return True

    @property
    def encoding(self):
        return "utf-8"

    @property
    def errors(self):
        return "strict"

    def isatty(self):
        return False

    def fileno(self):
        return self._fd

    @staticmethod
    def _check(s):
        if not isinstance(s, str):
            raise TypeError("write() argument must be str, not %s" % type(s).__name__)


class TaskStdout(_Text):
    """sys.stdout while the plugin serves: text printed during a task is
    kept in ``chunks`` for the runner, the rest goes to ``stray``. Its
    descriptor is 1, the forwarded pipe."""

    def __init__(self, stray):
        super().__init__(1)
        self.chunks = []
        self._stray = stray

    def write(self, s):
        self._check(s)
        if state.current is not None:
            self.chunks.append(s)
        else:
            self._stray.put(STDOUT, encode_line(s))
        return len(s)


class FdWriter(_Text):
    """sys.stderr while the plugin serves: written to file descriptor 2 at
    once, unbuffered. The host keeps the last lines for crash reports, and
    shows the ones that are not log records to the user, tagged with the
    worker; a line written just before the process dies still arrives."""

    def __init__(self, fd=2):
        super().__init__(fd)

    def write(self, s):
        self._check(s)
        data = encode_line(s)
        while data:
            try:
                data = data[os.write(self._fd, data):]
            except InterruptedError:
                continue
            except OSError:
                break  # the host is gone
        return len(s)


def forward_fd(fd, stray, channel):
    """Point file descriptor fd at a pipe whose contents go to stray, so
    writes below Python (C extensions, child processes) are forwarded too."""
    r, w = os.pipe()
    os.dup2(w, fd)
    os.close(w)

    def pump():
        while True:
            try:
                data = os.read(r, 65536)
            except OSError:
                return
            if not data:
                return
            stray.put(channel, data)

    threading.Thread(target=pump, name="pluginpool-fd%d" % fd, daemon=True).start()
