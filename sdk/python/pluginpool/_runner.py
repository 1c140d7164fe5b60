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
        self._cancels = 0  # bumped on each cancel, so the runner looks only then
        self._seq = -1  # the batch running now
        self._ctx = Context(settings.timeout)  # the context of the task running now, or of the last one
        self._item = 0  # numbers tasks, for cancellation (see Context._item)
        self._dead = False  # the stream ended: cancel everything
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
        if self.settings.timeout > 0:
            threading.Thread(target=self._watch, name="pluginpool-watch", daemon=True).start()
        try:
            while not self._dead:
                b = batches.get()
                if b is None:
                    return
                yield from self._batch(b)
        finally:
            self._stop.set()

    def _ended(self):
        self._dead = True
        self._stop.set()
        c = self._ctx
        c._cancel(c._item, CANCELED)

    def cancel(self, seq):
        """The host cancelled batch seq: its running task's context is
        cancelled and its remaining items answered as cancelled."""
        with self._lock:
            self._cancelled.add(seq)
            self._cancels += 1
            if self._seq == seq:
                c = self._ctx
                c._cancel(c._item, CANCELED)

    def _watch(self):
        """Cancel the running task once it passes task_timeout. Ticks at a
        tenth of the timeout (2 ms to 100 ms): a tick takes the GIL from the
        task thread, so not more often than needed."""
        timeout = self.settings.timeout
        tick = min(max(timeout / 10, 0.002), 0.1)
        while not self._stop.wait(tick):
            if state.current is None:
                continue
            c = self._ctx
            item = c._item  # read before _started: the runner writes them in the other order
            started = c._started
            if started and _monotonic() - started >= timeout:
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
            seen = self._cancels
            cancelled = seq in self._cancelled

        settings = self.settings
        timeout, flush, max_result = settings.timeout, settings.flush, settings.max_result
        fn, dec, enc = self.task.fn, self.task.decode, self.task.encode
        chunks = self.chunks
        word = self.word
        ctx = self._ctx
        ctx.attempt = attempt
        item = self._item

        parts = []  # encoded results, "" for none; str: joined and encoded once
        fixes = []  # (position in parts, byte length) of non-ASCII results
        errs = []  # (index, kind, message bytes)
        outs = []  # (index, lines)
        first = 0
        last = _monotonic()
        prev = 0
        state.current = ctx
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
                    ctx.attempt = attempt
                    self._ctx = ctx
                    state.current = ctx
                tid = ids[i] if ids is not None else base + i
                ctx.id = tid
                item += 1
                if timeout:
                    ctx._started = last
                ctx._item = item
                self._item = item
                if self._cancels != seen:
                    with self._lock:
                        seen = self._cancels
                        cancelled = seq in self._cancelled
                if cancelled or self._dead:
                    parts.append("")
                    errs.append((i, KIND_CANCELED, b"cancelled by the host"))
                    continue

                if word is not None:
                    word.value = tid << 1 | 1
                s = None
                try:
                    r = fn(dec(raw))
                except DecodeError as e:
                    errs.append((i, KIND_DECODE, _bytes(str(e))))
                except Retry as e:
                    errs.append((i, KIND_RETRY, _bytes(_retry_message(e))))
                except Cancelled as e:
                    timed_out = e.timeout or ctx.timed_out
                    errs.append((i, KIND_TIMEOUT if timed_out else KIND_CANCELED, _bytes(str(e))))
                except Exception as e:
                    kind = KIND_TASK
                    if ctx.cancelled:
                        kind = KIND_TIMEOUT if ctx.timed_out else KIND_CANCELED
                    errs.append((i, kind, _bytes(exception_message(e))))
                except SystemExit as e:
                    # sys.exit() in a task ends the process, as os.Exit
                    # does in Go: the host sees a crash.
                    _exit(e.code)
                else:
                    try:
                        s = enc(r)
                    except Exception as e:
                        errs.append((i, KIND_TASK, _bytes("cannot encode the result as JSON: %s" % e)))
                if word is not None:
                    word.value = tid << 1

                if s is None:
                    parts.append("")
                elif s.isascii():
                    if max_result and len(s) > max_result:
                        parts.append("")
                        errs.append((i, KIND_TASK, _too_large(len(s), max_result)))
                    else:
                        parts.append(s)
                else:
                    try:
                        size = len(s.encode())
                    except UnicodeEncodeError as e:
                        parts.append("")
                        errs.append((i, KIND_TASK, _bytes("cannot encode the result as UTF-8: %s" % e)))
                    else:
                        if max_result and size > max_result:
                            parts.append("")
                            errs.append((i, KIND_TASK, _too_large(size, max_result)))
                        else:
                            fixes.append((len(parts), size))
                            parts.append(s)
                if chunks:
                    outs.append((i, split_lines(chunks)))
                    chunks.clear()

                now = _monotonic()
                if now - last >= flush and i + 1 < n:
                    yield _answer(seq, first, parts, fixes, errs, outs)
                    first = i + 1
                    parts, fixes, errs, outs = [], [], [], []
                    now = _monotonic()
                last = now
        finally:
            state.current = None
            self._item = item
        yield _answer(seq, first, parts, fixes, errs, outs)


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

