"""The exceptions a task raises to say how it failed."""


class DecodeError(Exception):
    """The item's input is not what the task takes.

    The SDK raises it when an input does not decode into the type the task's
    first parameter is annotated with (``def task(x: int)`` given ``"abc"``);
    a task may raise it too, for input it rejects after decoding. The item
    fails with the host's "bad input" error, without a traceback, and
    ``pluginpool check`` tries its next sample item.
    """


class Retry(Exception):
    """Ask the host to run the task again, on any worker.

    Raise it for transient failures (a timed-out network call): the host
    re-runs the task up to the plugin's ``max_attempts``, then fails it with
    this message. ``raise pluginpool.Retry("upstream busy") from err`` keeps
    the cause in the message. Any other exception fails the item at once.
    """


class Cancelled(Exception):
    """The task's context was cancelled: the host cancelled the call, or the
    task ran past ``task_timeout``.

    ``Context.check()`` raises it; a task may let it propagate (the item then
    fails as cancelled, or as timed out) or catch it to clean up first.
    ``timeout`` says which.
    """

    def __init__(self, message="cancelled", timeout=False):
        super().__init__(message)
        self.timeout = timeout
