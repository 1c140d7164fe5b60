"""The lane (docs/PROTOCOL.md, "The lane"): the Run stream on a socket.

The host may pass one end of an AF_UNIX stream socket pair as
PLUGINPOOL_LANE_FD. A plugin that says ``DescribeResponse.lane = true``
then gets the Run stream there instead of over gRPC: frames of a 4-byte
little-endian length and one ``Batch`` in protobuf wire format, requests
and cancels from the host, answers from the plugin, with the Run stream's
semantics. End-of-file before any frame means the host chose gRPC.

The point is fewer thread hand-offs per message. Over gRPC a request goes
from grpcio's poller to the SDK's reader thread, a queue, the task thread,
a queue, the stream's handler thread and back to grpcio. On the lane the
task thread reads the socket itself when it is idle, and writes its
answers itself (the host reads answers while any are due, so a write waits
at most for it to take them). Once a batch has run for a tick of the
runner's clock (the flush interval or a tenth of the task timeout, at most
_runner.BUSY_TICK, 20 ms), a second thread, the *watcher*, reads on its
behalf, so that cancel frames take effect mid-batch and the end of the
stream cancels the running task: it polls the socket and a wake-up pipe,
and the task thread pulls it out of the socket through the pipe when the
batch is done. One reader at a time holds ``_rlock`` and reads whole
frames.

Measured on a 2-core machine with other tenants, examples/python/double.py
through host/pool (bench's BenchmarkApply with PLUGINPOOL_BENCH_DOUBLE): a
one-item Apply took 41-44 us at the median on the lane, 308-326 us over
gRPC (PLUGINPOOL_LANE=off). Waking the watcher for every batch instead of
after a tick cost 57 -> 74-116 us (Go client on the plugin, one core):
batches shorter than a tick see their cancels once they are answered (a
cancel of an answered batch is ignored anyway); a cancel of a longer one
waits at most a tick.
"""

import collections
import logging
import os
import select
import socket
import threading

from .worker_pb2 import Batch

_log = logging.getLogger("pluginpool")

_ENV = "PLUGINPOOL_LANE_FD"

# Frames up to this size arrive in one recv(); a larger one is read
# straight into a buffer of its own size.
_CHUNK = 64 << 10


class LaneError(Exception):
    """The host broke the lane's framing: the stream cannot go on."""


def open_lane(environ=os.environ):
    """The lane the host offered, as a connected socket, or None: none
    offered, a descriptor that is not a unix stream socket, or
    PLUGINPOOL_LANE=off (which the host honours too: every batch then goes
    over gRPC, to compare). Never a failure; problems are returned as the
    second value, for the log. The variable is unset, and the descriptor
    kept from processes the plugin starts (close-on-exec)."""
    v = environ.pop(_ENV, None)
    if not v:
        return None, None
    try:
        fd = int(v)
        if fd < 3:
            raise ValueError("0, 1 and 2 are stdio, never a lane")
        sock = socket.socket(fileno=fd)
    except (ValueError, OSError) as e:
        return None, "lane not used: %s=%s: %s" % (_ENV, v, e)
    if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
        sock.detach()  # not ours to close
        return None, "lane not used: %s=%s is not a unix stream socket" % (_ENV, v)
    sock.set_inheritable(False)
    if environ.get("PLUGINPOOL_LANE") == "off":
        sock.close()  # the host reads end-of-file and opens Run over gRPC
        return None, None
    sock.setblocking(True)
    return sock, None


class Frames:
    """Length-prefixed Batch frames on a socket. read() is for one reader
    at a time (the caller's lock); send() may be called from any thread."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""  # read but not yet taken: the start of the next frames
        self._wlock = threading.Lock()
        self.broken = False  # a write failed: the host is gone

    def read(self):
        """The next frame's Batch; None at end-of-file between frames. A
        frame cut short by end-of-file is the end too (the host went away
        mid-write). Raises LaneError for a frame that is not a Batch or
        cannot be allocated."""
        body = self._body()
        if body is None:
            return None
        try:
            return Batch.FromString(body)
        except Exception as e:  # google.protobuf.message.DecodeError
            raise LaneError("a frame of %d bytes is not a Batch: %s" % (len(body), e)) from None

    def buffered(self):
        """Whether a whole frame is already read, waiting in the buffer."""
        buf = self.buf
        return len(buf) >= 4 and len(buf) - 4 >= int.from_bytes(buf[:4], "little")

    def _body(self):
        buf = self.buf
        recv = self.sock.recv
        while len(buf) < 4:
            chunk = recv(_CHUNK)
            if not chunk:
                self.buf = b""
                return None
            buf += chunk
        n = int.from_bytes(buf[:4], "little")
        end = 4 + n
        if len(buf) >= end:
            self.buf = buf[end:]
            return buf[4:end]
        self.buf = b""
        try:
            body = bytearray(n)
        except MemoryError:
            raise LaneError("cannot allocate a frame of %d bytes" % n) from None
        have = len(buf) - 4
        body[:have] = buf[4:]
        view = memoryview(body)
        recv_into = self.sock.recv_into
        while have < n:
            k = recv_into(view[have:])
            if not k:
                return None
            have += k
        return body

    def send(self, batch):
        """Write batch as one frame. A failed write means the host is gone:
        the socket is shut down, so that the reader sees the end, and
        later answers are dropped, as gRPC drops a broken stream's."""
        body = batch.SerializeToString()
        frame = len(body).to_bytes(4, "little") + body
        with self._wlock:
            if self.broken:
                return
            try:
                self.sock.sendall(frame)
            except OSError as e:
                self.broken = True
                _log.debug("lane: write failed, the stream is over: %s", e)
                self.shutdown()

    def shutdown(self):
        """Make the host (and our own reader) see end-of-file."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class LaneStream:
    """The Run stream on the lane, for Runner.serve: next() gives the task
    thread its next request batch, send() writes an answer."""

    def __init__(self, sock):
        self.frames = Frames(sock)
        self.send = self.frames.send
        self._rlock = threading.Lock()  # one reader of the socket at a time
        self._queue = collections.deque()  # requests read ahead (by the watcher)
        self._cond = threading.Condition()  # the watcher waits here to be called
        self._running = False  # a batch runs (written under _rlock)
        self._watching = False  # the watcher reads while the batch runs
        self._over = False  # end-of-file or a broken frame: no more batches
        self._frames = 0  # frames read: end-of-file before the first is the host choosing gRPC
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._runner = None

    def serve(self, runner):
        """Run the stream's batches through runner on the calling thread
        (the task thread) until the host ends it, then close the lane.
        Returns whether the host used the lane at all."""
        self._runner = runner
        watcher = threading.Thread(target=self._watch, name="pluginpool-lane", daemon=True)
        watcher.start()
        try:
            runner.serve(self)
        finally:
            with self._cond:
                self._over = True
                self._cond.notify()
            self._wake()
            watcher.join()
            os.close(self._wake_r)
            os.close(self._wake_w)
            self.frames.sock.close()
        return self._frames > 0

    def busy(self):
        """Called by the runner's tick thread while a batch runs: from now
        on the watcher reads the frames that come meanwhile."""
        if not self._watching:
            with self._cond:
                self._watching = True
                self._cond.notify()

    def next(self):
        """The next request batch, or None when the stream is over. Called
        by the task thread between batches: it reads the socket itself when
        nothing is queued, handling cancels for batches not started."""
        if self._watching:
            self._watching = False
            self._wake()  # the batch is done: the watcher leaves the socket
        with self._rlock:
            self._running = False
            while not self._queue:
                if self._over:
                    return None
                self._read()
            b = self._queue.popleft()
            if b is None:
                return None
            # A cancel the same recv() brought is seen before the batch runs.
            while self.frames.buffered():
                self._read()
            self._running = True
        return b

    def fail(self, e):
        """The runner could not go on (a malformed batch): the stream
        breaks, as a Run call fails with it; the host sees end-of-file."""
        _log.error("Run stream on the lane broken: %s", e)
        self._end()
        self.frames.shutdown()

    def _read(self):
        """Read one frame and act on it (with _rlock held): a cancel
        cancels, a request is queued, the end ends."""
        try:
            b = self.frames.read()
        except LaneError as e:
            self.fail(e)
            return
        except OSError as e:
            _log.debug("lane: read failed, the stream is over: %s", e)
            b = None
        if b is None:
            if self._frames == 0:
                _log.debug("lane: end-of-file before any frame: the host runs the stream over gRPC")
            self._end()
            return
        self._frames += 1
        if b.cancel:
            self._runner.cancel(b.seq)
        else:
            self._queue.append(b)

    def _end(self):
        if not self._over:
            self._over = True
            self._queue.append(None)
            self._runner.stream_ended()

    def _wake(self):
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass  # the pipe is full: the watcher will wake anyway

    def _watch(self):
        """While a batch runs past a tick, read the frames that come
        meanwhile."""
        sock = self.frames.sock.fileno()
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        peek = select.poll()
        peek.register(sock, select.POLLIN)
        cond = self._cond
        while True:
            with cond:
                while not self._watching and not self._over:
                    cond.wait()
            if self._over:
                return
            readable = False
            for fd, _ in poller.poll():
                if fd == self._wake_r:
                    os.read(self._wake_r, 4096)
                else:
                    readable = True
            if not readable or not self._watching:
                continue
            with self._rlock:
                if not self._running or not self._watching or self._over:
                    continue  # the task thread reads between batches
                if not peek.poll(0):
                    continue  # the task thread took what was there
                self._read()
                while self.frames.buffered() and not self._over:
                    self._read()
