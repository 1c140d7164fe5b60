"""The Run stream: batches in, answers out.

One thread reads request batches (and cancels, which arrive on the same
stream while a batch runs); the stream's handler thread runs the items of
each batch in order and yields answers: one per batch, plus one whenever
flush_interval_ms has passed since the last answer for that batch, so a
long batch reports progress (the host's watchdog counts on it) and a crash
loses only what had not come back.

The per-item path is kept to plain local operations: for a trivial task the
SDK's own cost per item is ~1 us on CPython 3.11, against ~3 us for
``json.loads`` + call + ``json.dumps``.
"""

import itertools
import logging
import os
import queue
import sys
import threading
import time
import traceback

from ._context import CANCELED, TIMEOUT, Context, state
from ._errors import Cancelled, DecodeError, Retry
from ._output import split_lines
from .worker_pb2 import Batch

# ErrorKind values (worker.proto).
KIND_TASK = 1
KIND_DECODE = 3
KIND_TIMEOUT = 4
KIND_CANCELED = 5
KIND_RETRY = 6

_monotonic = time.monotonic
_log = logging.getLogger("pluginpool")


class Settings:
    """What InitRequest set for this process."""

    def __init__(self, timeout=0.0, flush=0.02, max_result=0, slot=0):
        self.timeout = timeout  # seconds; 0 = none
        self.flush = flush  # seconds
        self.max_result = max_result  # bytes; 0 = none
        self.slot = slot


def exception_message(e, skip=1):
    """'Type: message' and the traceback, the task's frames only (the first
    `skip` frames are the SDK calling it)."""
    head = traceback.format_exception_only(type(e), e)[-1].rstrip("\n")
    tb = e.__traceback__
    for _ in range(skip):
        if tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
    frames = "".join(traceback.format_tb(tb)) if tb is not None else ""
    msg = head
    if frames:
        msg += "\n\nTraceback (most recent call last):\n" + frames.rstrip("\n")
    cause = e.__cause__ or (None if e.__suppress_context__ else e.__context__)
    if cause is not None:
        msg += "\n\ncaused by " + traceback.format_exception_only(type(cause), cause)[-1].rstrip("\n")
    return msg


def _retry_message(e):
    msg = str(e)
    cause = e.__cause__ or e.__context__
    if cause is not None:
        c = traceback.format_exception_only(type(cause), cause)[-1].rstrip("\n")
        msg = msg + ": " + c if msg else c
    return msg or "retry requested"


def _bytes(s):
    return s.encode("utf-8", "backslashreplace")


class Runner:
    """Runs the batches of one Run stream."""

    def __init__(self, task, settings, stdout, ledger=None):
        self.task = task  # a _task.Task: fn(decode(raw)), then encode(result) -> str or None
        self.settings = settings
        self.chunks = stdout.chunks  # what print() wrote during the current item
        self.word = ledger.word if ledger is not None else None

        self._lock = threading.Lock()
        self._cancelled = set()  # seqs the host cancelled
        self._signals = 0  # bumped on each cancel and when the stream ends: the runner looks only then
        self._seq = -1  # the batch running now
        self._ctx = Context(settings.timeout)  # the context of the task running now, or of the last one
        self._item = 0  # numbers tasks, for cancellation (see Context._item)
        self._dead = False  # the stream ended: cancel everything
        self._flush_due = False  # set by _tick: time to answer what is finished
        self._stop = threading.Event()

    # --- the stream ---

    def run(self, requests, grpc_context):
        """The Run handler: a generator of response batches."""
        batches = queue.SimpleQueue()

        def read():
            try:
                for b in requests:
                    if b.cancel:
                        self.cancel(b.seq)
                    else:
                        batches.put(b)
            except Exception:  # the stream broke: the host is gone or closed it
                pass
            finally:
                batches.put(None)

        threading.Thread(target=read, name="pluginpool-recv", daemon=True).start()
        grpc_context.add_callback(self._ended)
        threading.Thread(target=self._tick, name="pluginpool-tick", daemon=True).start()
        profile = _profiler()
        nbatches, item0 = 0, self._item
        try:
            while not self._dead:
                b = batches.get()
                if b is None:
                    return
                nbatches += 1
                yield from self._batch(b)
        finally:
            self._stop.set()
            if profile is not None:
                profile()
            t = os.times()
            _log.debug("Run stream ended: %d tasks in %d batches; process CPU %.3f s user, %.3f s system",
                       self._item - item0, nbatches, t.user, t.system)

    def _ended(self):
        with self._lock:
            self._dead = True
            self._signals += 1
        self._stop.set()
        c = self._ctx
        c._cancel(c._item, CANCELED)

    def cancel(self, seq):
        """The host cancelled batch seq: its running task's context is
        cancelled and its remaining items answered as cancelled."""
        with self._lock:
            self._cancelled.add(seq)
            self._signals += 1
            if self._seq == seq:
                c = self._ctx
                c._cancel(c._item, CANCELED)

    def _tick(self):
        """Raise _flush_due every flush interval, and cancel the running
        task once it passes task_timeout. A flag read per item costs the
        task thread less than a clock read (~35 ns a call on CPython 3.11).
        Ticks at the flush interval, or a tenth of the timeout if shorter
        (not under 2 ms): a tick takes the GIL from the task thread."""
        timeout, flush = self.settings.timeout, self.settings.flush
        tick = flush
        if timeout > 0:
            tick = min(tick, max(timeout / 10, 0.002))
        tick = max(tick, 0.001)
        flushed = _monotonic()
        while not self._stop.wait(tick):
            if state.current is None:
                continue
            now = _monotonic()
            if now - flushed >= flush:
                self._flush_due = True
                flushed = now
            if timeout > 0:
                c = self._ctx
                item = c._item  # read before _started: the runner writes them in the other order
                started = c._started
                if started and now - started >= timeout:
                    c._cancel(item, TIMEOUT)

    # --- one batch ---

    def _batch(self, b):
        seq = b.seq
        data = b.data  # protobuf copies it out on every access: once
        ends = list(b.ends)
        ids = list(b.ids) if len(b.ids) else None
        base = b.base_id
        attempt = b.attempt or 1
        n = len(ends)
        if n and ends[-1] > len(data) or ids is not None and len(ids) != n:
            raise ValueError("malformed batch %d: %d items, %d ids, %d bytes, last item ends at %d"
                             % (seq, n, len(ids or ()), len(data), ends[-1] if n else 0))
        with self._lock:
            self._seq = seq
            self._cancelled = {s for s in self._cancelled if s >= seq}  # seqs only grow
            seen = self._signals
            cancelled = self._dead or seq in self._cancelled

        settings = self.settings
        timeout, max_result = settings.timeout, settings.max_result
        task = self.task
        fn, dec, enc = task.fn, task.decode, task.encode
        int_in = task.int_input
        int_repr = int.__repr__
        chunks = self.chunks
        word = self.word
        ctx = self._ctx
        item = self._item
        ctx._batch(attempt, ids, base, item + 1)

        parts = []  # encoded results, "" for none; str: joined and encoded once
        fixes = []  # (position in parts, byte length) of non-ASCII results
        errs = []  # (index, kind, message bytes)
        outs = []  # (index, lines)
        append = parts.append
        first = 0
        prev = 0
        self._flush_due = False
        state.current = ctx
        # The loop below is the SDK's per-item cost: each statement counts
        # (see the module comment). Common cases are inlined: an int input
        # that is a plain integer, an int result.
        try:
            for i in range(n):
                end = ends[i]
                if end < prev:
                    raise ValueError("malformed batch %d: item %d ends at %d, before %d" % (seq, i, end, prev))
                raw = data[prev:end]
                prev = end
                if ctx._touched:
                    # The task kept its context: the next one gets its own.
                    ctx = Context(timeout)
                    ctx._batch(attempt, ids, base, item + 1 - i)
                    self._ctx = ctx
                    state.current = ctx
                item += 1
                if timeout:
                    ctx._started = _monotonic()  # written before _item: see _tick
                ctx._item = item
                if self._signals != seen:
                    with self._lock:
                        seen = self._signals
                        cancelled = self._dead or seq in self._cancelled
                if cancelled:
                    append("")
                    errs.append((i, KIND_CANCELED, b"cancelled by the host"))
                    continue

                if word is not None:
                    tid = base + i if ids is None else ids[i]
                    word.value = tid << 1 | 1
                try:
                    if int_in and raw.isdigit() and (raw[0] != 48 or len(raw) == 1):
                        r = fn(int(raw))
                    else:
                        r = fn(dec(raw))
                except Exception as e:
                    append("")
                    errs.append((i,) + _failure(e, ctx))
                except SystemExit as e:
                    # sys.exit() in a task ends the process, as os.Exit
                    # does in Go: the host sees a crash.
                    _exit(e.code)
                else:
                    if type(r) is int and not max_result:
                        append(int_repr(r))  # ASCII, never too large
                    else:
                        part, size, err = _place(r, enc, max_result)
                        if err is not None:
                            append("")
                            errs.append((i, KIND_TASK, err))
                        else:
                            if size:
                                fixes.append((len(parts), size))
                            append(part)
                if word is not None:
                    word.value = tid << 1
                if chunks:
                    outs.append((i, split_lines(chunks)))
                    chunks.clear()

                if self._flush_due and i + 1 < n:
                    self._flush_due = False
                    yield _answer(seq, first, parts, fixes, errs, outs)
                    first = i + 1
                    parts, fixes, errs, outs = [], [], [], []
                    append = parts.append
        finally:
            state.current = None
            self._item = item
        yield _answer(seq, first, parts, fixes, errs, outs)


def _profiler():
    """With PLUGINPOOL_CPUPROFILE=DIR (as for Go plugins), profile the task
    thread with cProfile and return a function that writes
    DIR/NAME-PID.pstats (read it with python3 -m pstats)."""
    d = os.environ.get("PLUGINPOOL_CPUPROFILE")
    if not d:
        return None
    import cProfile
    p = cProfile.Profile()
    p.enable()

    def done():
        p.disable()
        name = os.path.splitext(os.path.basename(sys.argv[0] or "plugin"))[0]
        try:
            p.dump_stats(os.path.join(d, "%s-%d.pstats" % (name, os.getpid())))
        except OSError:
            pass
    return done


def _failure(e, ctx):
    """(kind, message) for an exception a task raised."""
    if isinstance(e, DecodeError):
        return KIND_DECODE, _bytes(str(e))
    if isinstance(e, Retry):
        return KIND_RETRY, _bytes(_retry_message(e))
    if isinstance(e, Cancelled):
        timed_out = e.timeout or ctx.timed_out
        return KIND_TIMEOUT if timed_out else KIND_CANCELED, _bytes(str(e))
    # An error after the task was cancelled is the cancellation's doing.
    kind = KIND_TASK
    if ctx.cancelled:
        kind = KIND_TIMEOUT if ctx.timed_out else KIND_CANCELED
    return kind, _bytes(exception_message(e))


def _place(r, enc, max_result):
    """(part, byte size if not ASCII, error) for a task's result r."""
    try:
        s = enc(r)
    except Exception as e:
        return None, 0, _bytes("cannot encode the result as JSON: %s" % e)
    if s is None:
        return "", 0, None
    if s.isascii():
        if max_result and len(s) > max_result:
            return None, 0, _too_large(len(s), max_result)
        return s, 0, None
    try:
        size = len(s.encode())
    except UnicodeEncodeError as e:
        return None, 0, _bytes("cannot encode the result as UTF-8: %s" % e)
    if max_result and size > max_result:
        return None, 0, _too_large(size, max_result)
    return s, size, None


def _too_large(size, limit):
    return b"result is %d bytes, over the %d-byte limit (max_result_bytes)" % (size, limit)


def _answer(seq, first, parts, fixes, errs, outs):
    """The response batch for items first.. of request seq."""
    lens = list(map(len, parts))
    for pos, size in fixes:
        lens[pos] = size
    resp = Batch(seq=seq, first=first, data="".join(parts).encode(), ends=list(itertools.accumulate(lens)))
    if errs:
        add = resp.errors.add
        errs.sort(key=_first)  # an item has at most one error; index order
        for i, kind, msg in errs:
            add(index=i, kind=kind, message=msg)
    if outs:
        add = resp.output.add
        for i, lines in outs:
            add(index=i, lines=lines)
    return resp


def _first(t):
    return t[0]


def _exit(code):
    """Exit now, as the task asked, after what is buffered on fd 2."""
    if code is None:
        code = 0
    elif not isinstance(code, int):
        try:
            os.write(2, (str(code) + "\n").encode(errors="replace"))
        except OSError:
            pass
        code = 1
    try:
        sys.__stderr__.flush()
    except Exception:
        pass
    os._exit(code)

