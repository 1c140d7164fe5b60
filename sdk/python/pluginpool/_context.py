"""The task context: which task is running, and whether it should stop."""

import threading
import time

from ._errors import Cancelled

# Why a task's context was cancelled.
CANCELED = 1  # the host cancelled the call (or the stream ended)
TIMEOUT = 2  # the task ran past task_timeout


class Context:
    """What a running task knows about itself. Get it with
    ``pluginpool.context()``.

    Attributes:
        id: the host-assigned task id, unique within one host pool; a
            retried task keeps its id. 0 outside a task.
        attempt: which run of the task this is: 1 the first time, 2 on the
            first retry. 0 outside a task.

    Cancellation is cooperative, as in Go: the host cancels a task's
    context when it cancels the call or when the task runs past
    ``task_timeout``, and a task that looks (``cancelled``, ``check()``,
    ``wait()``) can stop early. A task that never looks runs on; past
    ``task_timeout`` plus ``kill_grace`` the host kills its worker.

    A context is valid until its task returns, like the input it came with.
    """

    __slots__ = ("attempt", "_item", "_item0", "_ids", "_base", "_started", "_timeout",
                 "_reason", "_reason_item", "_event", "_lock", "_touched")

    def __init__(self, timeout=0.0):
        self.attempt = 0
        # The task id is worked out when asked for, from the batch's ids
        # (or base id) and the task's place in it: one store per task
        # (_item) instead of several.
        self._item0 = 0  # the _item of the batch's first task
        self._ids = None
        self._base = 0
        # _item numbers the tasks the runner ran with this object: a
        # cancellation names the item it is for, so one that arrives just as
        # the next task starts never cancels that one.
        self._item = 0
        self._started = 0.0  # time.monotonic() when the task started
        self._timeout = timeout  # seconds; 0 means none
        self._reason = 0
        self._reason_item = -1
        self._event = None
        self._lock = threading.Lock()
        self._touched = False

    @property
    def id(self):
        """The host-assigned task id (0 outside a task)."""
        k = self._item - self._item0
        if self._ids is not None:
            return self._ids[k]
        return self._base + k

    def _batch(self, attempt, ids, base, item0):
        """Set up for a batch whose first task is numbered item0."""
        self.attempt = attempt
        self._ids, self._base, self._item0 = ids, base, item0

    @property
    def deadline(self):
        """When the task times out, as a ``time.time()`` timestamp, or None
        when there is no ``task_timeout``."""
        if not self._timeout:
            return None
        return time.time() + self.remaining()

    def remaining(self):
        """Seconds left before the task times out (negative once it has),
        or None when there is no ``task_timeout``."""
        if not self._timeout:
            return None
        return self._started + self._timeout - time.monotonic()

    @property
    def cancelled(self):
        """True once the task should stop: cancelled by the host, or past
        its timeout."""
        return self._reason_item == self._item and self._reason != 0

    @property
    def timed_out(self):
        """True once the task ran past ``task_timeout``."""
        return self._reason_item == self._item and self._reason == TIMEOUT

    def check(self):
        """Raise ``pluginpool.Cancelled`` if the task should stop."""
        if self.cancelled:
            timeout = self._reason == TIMEOUT
            raise Cancelled("task timed out (task_timeout)" if timeout else "cancelled by the host", timeout=timeout)

    def wait(self, seconds=None):
        """Sleep up to ``seconds`` (forever if None), waking early when the
        task is cancelled. Returns True if it was cancelled: use it instead
        of ``time.sleep`` in a task that waits."""
        return self.done.wait(seconds)

    @property
    def done(self):
        """A ``threading.Event`` set when the task is cancelled, for tasks
        that wait on something else as well."""
        with self._lock:
            if self._event is None:
                self._event = threading.Event()
                if self.cancelled:
                    self._event.set()
            return self._event

    def _cancel(self, item, reason):
        """Cancel task ``item`` for ``reason``, if it is still the one running
        with this object; the first reason wins."""
        with self._lock:
            if self._item != item or (self._reason_item == item and self._reason):
                return
            self._reason, self._reason_item = reason, item
            if self._event is not None:
                self._event.set()

    def __repr__(self):
        return "<pluginpool.Context id=%d attempt=%d%s>" % (self.id, self.attempt, " cancelled" if self.cancelled else "")


class _State:
    """The running task, shared by the runner, context(), the print capture
    and the log handler. ``current`` is set for the whole of a batch."""

    __slots__ = ("current",)

    def __init__(self):
        self.current = None


state = _State()


def context():
    """The context of the task running now. Outside a task (in a unit test
    of the task function, say) it returns an idle context: id 0, attempt 0,
    never cancelled, so task functions stay easy to test."""
    c = state.current
    if c is None:
        return Context()
    # The runner reuses a context for the next task only when the task never
    # asked for it: one handed out here is the task's until it returns.
    c._touched = True
    return c
