"""The Run stream: batches in, answers out.

Over gRPC (run()), three threads of the SDK's own serve a stream: one reads
request batches (and cancels, which arrive on the same stream while a batch
runs); one, the task thread, runs the items of each batch in order and
queues answers; the stream's gRPC handler thread sends them, so the task
thread never waits for gRPC to send. On the lane (serve(), with
_lane.LaneStream as the transport) the task thread reads and writes the
socket itself, and a watcher reads while a long batch runs. Everything
else is the same on both.

A batch is answered once it is done, and also whenever flush_interval_ms
has passed since its last answer (so a long batch reports progress, which
the host's watchdog counts on, and a crash loses only what had not come
back); with a task timeout, also when a task has run for a tick with
finished batch-mates unsent, so a task that hangs until the host kills the
process does not take their answers with it.

The per-item path is kept to plain local operations: for a trivial task the
SDK's own cost is ~0.5 us an item on CPython 3.11, against ~3 us for
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

# An error message is cut to this many bytes (worker.proto, max_result_bytes).
MAX_MESSAGE = 64 << 10

# With a transport that reads only when told a batch is running (the lane),
# the longest tick, in seconds: how late a cancel of a running batch can be
# seen. The host's flush interval is this already.
BUSY_TICK = 0.02

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
    return s.encode("utf-8", "backslashreplace")[:MAX_MESSAGE]


class _Open:
    """The answer being gathered for a batch: items first.. that finished
    and were not sent yet. parts are their encoded results ("" for none or
    a failure) as str, joined and encoded once; fixes the (position, byte
    length) of the non-ASCII ones; errs (index, kind, message); outs
    (index, lines). size counts their bytes, when max_result_bytes bounds
    a response."""

    __slots__ = ("seq", "first", "parts", "fixes", "errs", "outs", "size", "running")

    def __init__(self, seq, first):
        self.seq, self.first = seq, first
        self.parts, self.fixes, self.errs, self.outs = [], [], [], []
        self.size = 0
        self.running = -1  # with a task timeout: the item running now, else -1

    def answer(self):
        """The response for the gathered items, and a fresh _Open after them."""
        resp = _answer(self.seq, self.first, self.parts, self.fixes, self.errs, self.outs)
        return resp, _Open(self.seq, self.first + len(self.parts))


class Runner:
    """Runs the batches of one Run stream."""

    def __init__(self, task, settings, stdout, ledger=None):
        self.task = task  # a _task.Task: fn(decode(raw)), then encode(result) -> str or None
        self.settings = settings
        self.chunks = stdout.chunks  # what print() wrote during the current item
        self.words = ledger.words if ledger is not None else None  # the start ledger: words[1] is the word

        self._lock = threading.Lock()
        self._cancelled = set()  # seqs the host cancelled
        self._signals = 0  # bumped on each cancel and when the stream ends: the runner looks only then
        self._seq = -1  # the batch running now
        self._ctx = Context(settings.timeout)  # the context of the task running now, or of the last one
        self._item = 0  # numbers tasks, for cancellation (see Context._item)
        self._dead = False  # the stream ended: cancel everything
        self._flush_due = False  # set by _tick: time to answer what is finished
        self._open = None  # with a task timeout: the batch's _Open, for _tick
        self._emit = None  # sends an answer: the transport's, set by _work
        self._busy = None  # the transport's, called by _tick while a batch runs
        self._stop = threading.Event()

    # --- the stream ---

    def run(self, requests, grpc_context):
        """The gRPC Run handler: a generator of response batches. A reader
        thread takes requests from grpcio, the task thread runs them and
        queues answers, and the handler thread (this generator) hands them
        to grpcio: the task thread never waits for gRPC to send."""
        batches = queue.SimpleQueue()
        answers = queue.SimpleQueue()

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

        def work():
            try:
                self._work(batches.get, answers.put)
            except BaseException as e:  # a malformed batch: the stream fails with it
                answers.put(e)
            finally:
                answers.put(None)

        grpc_context.add_callback(self.stream_ended)
        threading.Thread(target=read, name="pluginpool-recv", daemon=True).start()
        threading.Thread(target=work, name="pluginpool-tasks", daemon=True).start()
        try:
            while True:
                resp = answers.get()
                if resp is None:
                    return
                if isinstance(resp, BaseException):
                    raise resp
                yield resp
        finally:
            self._stop.set()

    def serve(self, stream):
        """Run a stream's batches on the calling thread, which becomes the
        task thread: stream.next() returns the next request batch (None
        when the stream is over), stream.send(batch) writes an answer and
        may block, stream.fail(exc) breaks the stream when a batch is
        malformed, and the tick thread calls stream.busy() while a batch
        runs (every tick). The stream calls cancel() for cancel requests
        and stream_ended() when it ends. The lane's transport (_lane.py)."""
        self._busy = stream.busy
        try:
            self._work(stream.next, stream.send)
        except Exception as e:
            stream.fail(e)
        finally:
            self._stop.set()

    def _work(self, next_batch, emit):
        """The task thread: runs the batches next_batch() returns, in order,
        until it returns None or the stream ended; answers go to emit,
        which _tick uses too."""
        self._emit = emit
        threading.Thread(target=self._tick, name="pluginpool-tick", daemon=True).start()
        profile = None
        nbatches, item0 = 0, self._item
        try:
            profile = _profiler()
            while not self._dead:
                b = next_batch()
                if b is None:
                    break
                nbatches += 1
                self._batch(b, emit)
        finally:
            if profile is not None:
                profile()
            t = os.times()
            _log.debug("Run stream ended: %d tasks in %d batches; process CPU %.3f s user, %.3f s system",
                       self._item - item0, nbatches, t.user, t.system)

    def stream_ended(self):
        """The stream ended (the host cancelled it, went away, or closed the
        lane): the running task is cancelled, nothing more runs."""
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
        """Raise _flush_due every flush interval; with a task timeout, send
        the finished batch-mates of a task that has run for a tick, and
        cancel the task once it passes the timeout. A flag read per item
        costs the task thread less than a clock read (~35 ns a call on
        CPython 3.11). Ticks at the flush interval, or a tenth of the
        timeout if shorter (not under 2 ms), at most BUSY_TICK on the lane:
        a tick takes the GIL from the task thread. On the lane it also
        calls the stream's busy() while a batch runs."""
        timeout, flush = self.settings.timeout, self.settings.flush
        tick = flush
        if timeout > 0:
            tick = min(tick, max(timeout / 10, 0.002))
        busy = self._busy
        if busy is not None:
            # The lane's watcher is called by the tick: a cancel of a
            # running batch waits at most this long, whatever the interval.
            tick = min(tick, BUSY_TICK)
        tick = max(tick, 0.001)
        flushed = _monotonic()
        while not self._stop.wait(tick):
            if state.current is None:
                continue
            if busy is not None:
                busy()
            now = _monotonic()
            if now - flushed >= flush:
                self._flush_due = True
                flushed = now
            if timeout > 0:
                c = self._ctx
                item = c._item  # read before _started: the runner writes them in the other order
                started = c._started
                if started and now - started >= tick:
                    self._send_finished()
                if started and now - started >= timeout:
                    c._cancel(item, TIMEOUT)

    def _send_finished(self):
        """Send the answers gathered before the running task (task timeout
        only: the task thread then holds the lock around each task)."""
        with self._lock:
            o = self._open
            if o is None or o.running < 0 or not o.parts:
                return
            resp, self._open = o.answer()
            self._open.running = o.running
            # Sent under the lock: the task thread's next answer for the
            # batch, which covers the items after these, must come after.
            self._emit(resp)

    # --- one batch ---

    def _batch(self, b, emit):
        seq = b.seq
        data = b.data  # protobuf copies it out on every access: once
        ends = list(b.ends)
        ids = list(b.ids) if len(b.ids) else None
        base = b.base_id
        attempt = b.attempt or 1
        n = len(ends)
        # Validated whole, before any task runs (~9 ns an item: sorted() of
        # a sorted list is one pass in C).
        if n and ends[-1] > len(data) or ids is not None and len(ids) != n or ends != sorted(ends):
            raise ValueError("malformed batch %d: %d items, %d ids, %d bytes, boundaries %s"
                             % (seq, n, len(ids or ()), len(data),
                                "in order" if ends == sorted(ends) else "out of order"))
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
        words = self.words
        lock = self._lock
        ctx = self._ctx
        item = self._item
        ctx._batch(attempt, ids, base, item + 1)

        o = _Open(seq, 0)
        if timeout:
            self._open = o
        parts, errs = o.parts, o.errs
        append = parts.append
        prev = 0
        self._flush_due = False
        state.current = ctx
        # The loop below is the SDK's per-item cost: each statement counts
        # (see the module comment). Common cases are inlined: an int input
        # that is a plain integer, an int result, and under max_result_bytes
        # (which the host always sends) an int result that fits; with no
        # task timeout, nothing else happens per item.
        try:
            for i in range(n):
                end = ends[i]
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
                    with lock:
                        seen = self._signals
                        cancelled = self._dead or seq in self._cancelled
                if cancelled:
                    append("")
                    errs.append((i, KIND_CANCELED, b"cancelled by the host"))
                    continue

                if words is not None:
                    mark = (base + i if ids is None else ids[i]) << 1
                    words[1] = mark | 1  # the start ledger: running
                if timeout:
                    with lock:
                        o.running = i
                ok = False
                try:
                    if int_in and raw.isdigit() and (raw[0] != 48 or len(raw) == 1):
                        r = fn(int(raw))
                    else:
                        r = fn(dec(raw))
                    ok = True
                except Exception as e:
                    failure = _failure(e, ctx)
                except SystemExit as e:
                    # sys.exit() in a task ends the process, as os.Exit
                    # does in Go: the host sees a crash.
                    _exit(e.code)
                if words is not None:
                    words[1] = mark  # returned
                if timeout:
                    with lock:
                        if self._open is not o:  # _tick sent the items before this one
                            o = self._open
                            parts, errs = o.parts, o.errs
                            append = parts.append
                        o.running = -1

                if max_result:
                    if ok and type(r) is int and not chunks and (size := o.size + len(part := int_repr(r))) <= max_result:
                        # What _bounded does with a result that fits in what
                        # is left of the response, inlined: the call, made
                        # for every item, cost W7 ~60% more plugin CPU.
                        o.size = size
                        append(part)  # ASCII
                    else:
                        lines = None
                        if chunks:
                            lines = split_lines(chunks)
                            chunks.clear()
                        o = self._bounded(o, i, ok and r, ok or failure, lines, enc, max_result, emit)
                        parts, errs = o.parts, o.errs
                        append = parts.append
                else:
                    if not ok:
                        append("")
                        errs.append((i,) + failure)
                    elif type(r) is int:
                        append(int_repr(r))  # ASCII
                    else:
                        part, size, err = _place(r, enc)
                        if err is not None:
                            append("")
                            errs.append((i, KIND_TASK, err))
                        else:
                            if size:
                                o.fixes.append((len(parts), size))
                            append(part)
                    if chunks:
                        o.outs.append((i, split_lines(chunks)))
                        chunks.clear()

                if self._flush_due and i + 1 < n:
                    self._flush_due = False
                    with lock:
                        resp, o = self._open_answer(o, timeout)
                    emit(resp)
                    parts, errs = o.parts, o.errs
                    append = parts.append
        finally:
            state.current = None
            self._item = item
        with lock:
            if timeout and self._open is not o:
                o = self._open
            self._open = None
        emit(o.answer()[0])

    def _open_answer(self, o, timeout):
        """o's answer and the _Open after it; called with the lock held."""
        resp, nxt = o.answer()
        if timeout:
            self._open = nxt
        return resp, nxt

    def _bounded(self, o, i, r, failure, lines, enc, max_result, emit):
        """Place item i's answer in o under max_result_bytes: a result and
        the lines printed with it over the bound fail the item (the lines
        dropped); an answer that would take the response past it goes in a
        new response. Returns the _Open to go on with."""
        if failure is True:
            part, size, err = _place(r, enc)
            if err is None:
                nbytes = size or len(part)
                printed = sum(len(x) for x in lines) if lines else 0
                if nbytes + printed > max_result:
                    err = _too_large(nbytes + printed, max_result)
                    lines = None
            kind = KIND_TASK
        else:
            kind, err = failure
            part, size = "", 0
        if err is not None:
            part, size = "", 0
        cost = (size or len(part)) + (len(err) if err is not None else 0) + (sum(len(x) for x in lines) if lines else 0)
        if o.parts and o.size + cost > max_result:
            with self._lock:
                resp, o = self._open_answer(o, self.settings.timeout)
            emit(resp)
        o.size += cost
        if size:
            o.fixes.append((len(o.parts), size))
        o.parts.append(part)
        if err is not None:
            o.errs.append((i, kind, err))
        if lines:
            o.outs.append((i, lines))
        return o


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


def _place(r, enc):
    """(part, byte size if not ASCII, error) for a task's result r."""
    try:
        s = enc(r)
    except Exception as e:
        return "", 0, _bytes("cannot encode the result as JSON: %s" % e)
    if s is None:
        return "", 0, None
    if s.isascii():
        return s, 0, None
    try:
        return s, len(s.encode()), None
    except UnicodeEncodeError as e:
        return "", 0, _bytes("cannot encode the result as UTF-8: %s" % e)


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

