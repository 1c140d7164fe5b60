"""The Run stream, driven in process: batches in, answers out."""

import mmap
import os
import queue
import struct
import sys
import tempfile
import threading
import time
import unittest

import pluginpool
from pluginpool import _context
from pluginpool._ledger import Ledger
from pluginpool._output import Stray, TaskStdout
from pluginpool._runner import (KIND_CANCELED, KIND_DECODE, KIND_RETRY, KIND_TASK, KIND_TIMEOUT, Runner,
                                Settings)
from pluginpool._task import Task
from pluginpool.worker_pb2 import Batch

WAIT = 30  # seconds: the "does not hang" bound


class FakeContext:
    def __init__(self):
        self.callbacks = []

    def add_callback(self, cb):
        self.callbacks.append(cb)
        return True


def request(seq, items, **kw):
    data = b"".join(items)
    ends, n = [], 0
    for it in items:
        n += len(it)
        ends.append(n)
    return Batch(seq=seq, data=data, ends=ends, **kw)


class Stream:
    """A request iterator the test feeds while the runner runs."""

    def __init__(self):
        self.q = queue.Queue()

    def send(self, b):
        self.q.put(b)

    def close(self):
        self.q.put(None)

    def __iter__(self):
        while True:
            b = self.q.get(timeout=WAIT)
            if b is None:
                return
            yield b


def merged(answers):
    """The answers to one request batch, checked to cover consecutive
    ranges, as (values, {index: (kind, message)}, {index: lines})."""
    values, errors, output = [], {}, {}
    for r in answers:
        if r.first != len(values):
            raise AssertionError("answer starts at %d after %d items" % (r.first, len(values)))
        for e in r.errors:
            assert r.first <= e.index < r.first + len(r.ends), (e.index, r.first, len(r.ends))
            errors[e.index] = (e.kind, e.message)
        for o in r.output:
            output[o.index] = list(o.lines)
        values += items_of(r)
    return values, errors, output


def items_of(resp):
    out, prev = [], 0
    for e in resp.ends:
        out.append(resp.data[prev:e])
        prev = e
    return out


class GRPCHost:
    """The host's side of a Run stream over gRPC, played by the test: the
    runner's handler generator fed by a Stream, its answers queued."""

    def __init__(self, runner):
        self.stream = Stream()
        self.ctx = FakeContext()
        self.answers = queue.Queue()
        self.error = None  # what broke the stream
        self.thread = threading.Thread(target=self._run, args=(runner,))
        self.thread.start()

    def _run(self, runner):
        try:
            for r in runner.run(iter(self.stream), self.ctx):
                self.answers.put(r)
        except Exception as e:  # the call fails with it
            self.error = e

    def send(self, b):
        self.stream.send(b)

    def close(self):
        """No more requests: the runner answers what it has, then ends."""
        self.stream.close()

    def end(self):
        """The host cancels the call."""
        for cb in self.ctx.callbacks:
            cb()
        self.stream.close()

    def join(self):
        """Wait for the stream to end; return the answers not taken yet.
        Raises what broke the stream."""
        self.thread.join(WAIT)
        assert not self.thread.is_alive(), "the Run stream did not end"
        if self.error is not None:
            raise self.error
        out = []
        while not self.answers.empty():
            out.append(self.answers.get())
        return out


class RunnerTest(unittest.TestCase):
    """The Run stream's behaviour over gRPC's handler (run()). LaneRunnerTest
    (test_lane.py) runs every case again on the lane."""

    Host = GRPCHost
    Broken = ValueError  # what the host sees when a malformed batch breaks the stream

    def setUp(self):
        self.stdout = TaskStdout(Stray())
        self.saved = sys.stdout
        sys.stdout = self.stdout
        self.addCleanup(setattr, sys, "stdout", self.saved)

    def runner(self, fn, settings=None, raw=False, ledger=None):
        return Runner(Task(fn, raw=raw), settings or Settings(), self.stdout, ledger)

    def run_batches(self, fn, batches, settings=None, raw=False, ledger=None):
        """Run fn over the request batches; return the answers."""
        host = self.Host(self.runner(fn, settings, raw, ledger))
        for b in batches:
            host.send(b)
        host.close()
        return host.join()

    def test_double_in_order(self):
        def double(x: int) -> int:
            return 2 * x
        got = self.run_batches(double, [request(1, [b"1", b"2", b"30"], base_id=10),
                                        request(2, [b"-4"], base_id=13)])
        self.assertEqual([(r.seq, r.first, items_of(r)) for r in got],
                         [(1, 0, [b"2", b"4", b"60"]), (2, 0, [b"-8"])])
        self.assertFalse(got[0].errors)

    def test_errors_and_output(self):
        def task(x):
            if x == "fail":
                raise ValueError("failed on purpose")
            if x == "retry":
                raise pluginpool.Retry("transient") from ConnectionError("refused")
            if x == "decode":
                raise pluginpool.DecodeError("not for me")
            if x == "print":
                print("line one")
                print("line two\nline three", end="")
                return None
            return x
        got = self.run_batches(task, [request(1, [b'"ok"', b'"fail"', b'"print"', b'"retry"', b'"decode"', b"[1"])])
        self.assertEqual(len(got), 1)
        r = got[0]
        self.assertEqual(items_of(r), [b'"ok"', b"", b"", b"", b"", b""])
        errs = [(e.index, e.kind) for e in r.errors]
        self.assertEqual(errs, [(1, KIND_TASK), (3, KIND_RETRY), (4, KIND_DECODE), (5, KIND_DECODE)])
        msg = r.errors[0].message.decode()
        self.assertTrue(msg.startswith("ValueError: failed on purpose\n\nTraceback (most recent call last):"), msg)
        self.assertIn("in task", msg)
        self.assertNotIn("pluginpool/_runner.py", msg)
        self.assertEqual(r.errors[1].message, b"transient: ConnectionError: refused")
        self.assertIn(b"cannot decode input [1 as JSON", r.errors[3].message)
        self.assertEqual([(o.index, list(o.lines)) for o in r.output],
                         [(2, [b"line one", b"line two", b"line three"])])

    def test_results_that_are_not_json(self):
        def task(x):
            return {"nan": float("nan"), "set": {1}, "obj": object(), "surrogate": "\ud800", "big": "é" * 10}[x]
        got = self.run_batches(task, [request(1, [b'"nan"', b'"set"', b'"obj"', b'"surrogate"', b'"big"'])],
                               Settings(max_result=100))
        values, errors, _ = merged(got)
        self.assertEqual(values[1], b"[1]")
        self.assertEqual(sorted(errors), [0, 2, 3])
        self.assertIn(b"cannot encode the result as JSON", errors[0][1])
        self.assertIn(b"object is not JSON-serializable", errors[2][1])
        self.assertIn(b"UTF-8", errors[3][1])
        self.assertEqual(values[4], ('"' + "é" * 10 + '"').encode())

    def test_max_result_bytes(self):
        # A result and its printed lines count together against the bound;
        # an answer that would take a response past it starts a new one.
        def task(n):
            if n < 0:
                print("p" * -n)
                return 1
            return "x" * n
        got = self.run_batches(task, [request(1, [b"3", b"5", b"-20", b"-5", b"30", b"4"])],
                               Settings(max_result=12, flush=60))
        values, errors, output = merged(got)
        self.assertEqual(values, [b'"xxx"', b'"xxxxx"', b"", b"1", b"", b'"xxxx"'])
        self.assertEqual({i: e[0] for i, e in errors.items()}, {2: KIND_TASK, 4: KIND_TASK})
        self.assertEqual(errors[2][1], b"result is 21 bytes, over the 12-byte limit (max_result_bytes)")
        self.assertEqual(output, {3: [b"ppppp"]})  # item 2's lines dropped with it
        for r in got:
            size = len(r.data) + sum(len(e.message) for e in r.errors) + sum(len(l) for o in r.output for l in o.lines)
            self.assertTrue(size <= 12 or len(r.ends) == 1, "a response of %d items, %d bytes" % (len(r.ends), size))
        self.assertGreater(len(got), 2)

    def test_max_result_bytes_int_results(self):
        # Plain integers in and int results out take the runner's inlined
        # path under max_result_bytes too: the same bound, the same splits.
        def task(n: int) -> int:
            if n == 5:
                print("five")
            return n
        got = self.run_batches(task, [request(1, [b"7", b"123456", b"1234567890123", b"42", b"12345",
                                                  b"5", b"-8", b"1.5e3", b"007"])],
                               Settings(max_result=12, flush=60))
        values, errors, output = merged(got)
        self.assertEqual(values, [b"7", b"123456", b"", b"42", b"12345", b"5", b"-8", b"", b""])
        self.assertEqual({i: e[0] for i, e in errors.items()}, {2: KIND_TASK, 7: KIND_DECODE, 8: KIND_DECODE})
        self.assertEqual(errors[2][1], b"result is 13 bytes, over the 12-byte limit (max_result_bytes)")
        self.assertEqual(output, {5: [b"five"]})
        # 7 and 123456 (7 bytes); the error (61 bytes) alone; 42, 12345,
        # 5 and its line (12); -8 alone, as each decode error is.
        self.assertEqual([(r.first, len(r.ends)) for r in got], [(0, 2), (2, 1), (3, 3), (6, 1), (7, 1), (8, 1)])
        for r in got:
            size = len(r.data) + sum(len(e.message) for e in r.errors) + sum(len(l) for o in r.output for l in o.lines)
            self.assertTrue(size <= 12 or len(r.ends) == 1, "a response of %d items, %d bytes" % (len(r.ends), size))

    def test_long_error_messages_are_cut(self):
        def task(x):
            raise ValueError("y" * 100000)
        values, errors, _ = merged(self.run_batches(task, [request(1, [b"1"])]))
        self.assertEqual(len(errors[0][1]), 64 << 10)

    def test_non_ascii_ends_count_bytes(self):
        got = self.run_batches(lambda s: s + "é", [request(1, [b'"a"', b'"\xc3\xa9"', b'"b"'])])
        self.assertEqual(items_of(got[0]), ['"aé"'.encode(), '"éé"'.encode(), '"bé"'.encode()])

    def test_context_ids_and_attempt(self):
        def task(x):
            c = pluginpool.context()
            return [c.id, c.attempt]
        got = self.run_batches(task, [request(1, [b"0", b"0"], ids=[7, 9], attempt=2),
                                      request(2, [b"0"], base_id=40)])
        self.assertEqual(items_of(got[0]), [b"[7,2]", b"[9,2]"])
        self.assertEqual(items_of(got[1]), [b"[40,1]"])
        self.assertIsNone(_context.state.current)
        self.assertEqual(pluginpool.context().id, 0)

    def test_flush_answers_progress(self):
        # Tasks of 30 ms, a 10 ms flush interval: answers come every item or
        # so, covering consecutive ranges of the batch.
        def slow(x):
            time.sleep(0.03)
            return x
        got = self.run_batches(slow, [request(5, [b"1", b"2", b"3", b"4"])], Settings(flush=0.01))
        self.assertGreater(len(got), 1)
        first, values = 0, []
        for r in got:
            self.assertEqual((r.seq, r.first), (5, first))
            first += len(r.ends)
            values += items_of(r)
        self.assertEqual(values, [b"1", b"2", b"3", b"4"])

    def test_cancel_mid_batch(self):
        started = threading.Event()

        def task(x):
            if x == "wait":
                started.set()
                if not pluginpool.context().wait(WAIT):
                    return "not cancelled"
                pluginpool.context().check()
            return x
        host = self.Host(self.runner(task, Settings(flush=60)))
        host.send(request(1, [b'"a"', b'"wait"', b'"b"', b'"c"']))
        self.assertTrue(started.wait(WAIT))
        host.send(Batch(seq=1, cancel=True))
        host.send(request(2, [b'"d"']))
        host.close()
        out = host.join()
        self.assertEqual(items_of(out[0]), [b'"a"', b"", b"", b""])
        self.assertEqual([(e.index, e.kind) for e in out[0].errors],
                         [(1, KIND_CANCELED), (2, KIND_CANCELED), (3, KIND_CANCELED)])
        self.assertEqual(items_of(out[1]), [b'"d"'])  # the next batch runs as usual

    def test_cancel_of_a_queued_batch(self):
        gate = threading.Event()
        host = self.Host(self.runner(lambda x: gate.wait(WAIT) and x, Settings(flush=60)))
        host.send(request(1, [b"1"]))
        host.send(request(2, [b"2", b"3"]))
        host.send(Batch(seq=2, cancel=True))
        time.sleep(0.05)  # let the reader take the cancel before batch 1 ends (not asserted otherwise)
        gate.set()
        host.close()
        out = host.join()
        self.assertEqual(items_of(out[0]), [b"1"])
        self.assertEqual([e.kind for e in out[1].errors], [KIND_CANCELED, KIND_CANCELED])

    def test_timeout(self):
        def task(x):
            c = pluginpool.context()
            if x == "check":
                c.wait(WAIT)
                c.check()
            if x == "returns":
                c.wait(WAIT)
                return "late but kept"
            if x == "raises":
                c.wait(WAIT)
                raise RuntimeError("gave up")
            return [c.remaining() is not None, c.deadline is not None]
        got = self.run_batches(task, [request(1, [b'"check"', b'"returns"', b'"raises"', b'"quick"'])],
                               Settings(timeout=0.05, flush=60))
        values, errors, _ = merged(got)
        self.assertEqual(values, [b"", b'"late but kept"', b"", b"[true,true]"])
        self.assertEqual({i: e[0] for i, e in errors.items()}, {0: KIND_TIMEOUT, 2: KIND_TIMEOUT})
        self.assertEqual(errors[0][1], b"task timed out (task_timeout)")

    def test_hung_task_does_not_hold_back_its_batch_mates(self):
        # With a task timeout, the answers of items finished before a task
        # that runs on are sent while it runs: were the host to kill the
        # process, they would not be lost with it.
        hung = threading.Event()
        host = self.Host(self.runner(lambda x: hung.wait(WAIT) and x if x == "hang" else x,
                                     Settings(timeout=0.05, flush=60)))
        host.send(request(1, [b'"a"', b'"b"', b'"hang"', b'"c"']))
        first = host.answers.get(timeout=WAIT)  # while "hang" still runs
        self.assertEqual((first.first, items_of(first)), (0, [b'"a"', b'"b"']))
        self.assertFalse(hung.is_set())
        hung.set()
        host.close()
        rest = host.join()
        values, _, _ = merged([first] + rest)
        self.assertEqual(values, [b'"a"', b'"b"', b'"hang"', b'"c"'])

    def test_stream_end_cancels(self):
        started = threading.Event()

        def task(x):
            started.set()
            return pluginpool.context().wait(WAIT)
        host = self.Host(self.runner(task, Settings(flush=60)))
        host.send(request(1, [b"1", b"2"]))
        self.assertTrue(started.wait(WAIT))
        host.end()
        out = host.join()
        self.assertEqual(items_of(out[0]), [b"true", b""])
        self.assertEqual([e.kind for e in out[0].errors], [KIND_CANCELED])

    def test_ledger(self):
        with tempfile.TemporaryFile() as f:
            f.truncate(64)
            seen = []
            m = mmap.mmap(f.fileno(), 64)

            def word():
                return struct.unpack_from("<Q", m, 8)[0]

            def task(x):
                seen.append(word())
                return x
            self.run_batches(task, [request(1, [b"1", b"2"], base_id=5)], ledger=Ledger(f.fileno()))
            self.assertEqual(seen, [5 << 1 | 1, 6 << 1 | 1])
            self.assertEqual(word(), 6 << 1)

    def test_open_ledger(self):
        from pluginpool._ledger import open_ledger
        self.assertEqual(open_ledger({}), (None, None))
        self.assertEqual(open_ledger({"PLUGINPOOL_LEDGER_FD": ""}), (None, None))
        ledger, problem = open_ledger({"PLUGINPOOL_LEDGER_FD": "not a number"})
        self.assertIsNone(ledger)
        self.assertIn("start ledger not kept", problem)
        with tempfile.TemporaryFile() as f:
            f.truncate(8)  # too small
            ledger, problem = open_ledger({"PLUGINPOOL_LEDGER_FD": str(os.dup(f.fileno()))})
            self.assertIsNone(ledger)
            f.truncate(64)
            fd = os.dup(f.fileno())
            env = {"PLUGINPOOL_LEDGER_FD": str(fd)}
            ledger, problem = open_ledger(env)
            self.assertIsNone(problem)
            self.assertNotIn("PLUGINPOOL_LEDGER_FD", env)  # let go of, once mapped
            with self.assertRaises(OSError):
                os.fstat(fd)  # closed: the mapping keeps the file
            ledger.words[1] = 7 << 1 | 1
            f.seek(8)
            self.assertEqual(struct.unpack("<Q", f.read(8))[0], 15)

    def test_raw(self):
        got = self.run_batches(lambda b: b"[" + b + b"]", [request(1, [b"1", b'"x"'])], raw=True)
        self.assertEqual(items_of(got[0]), [b"[1]", b'["x"]'])

    def test_malformed_batch(self):
        ran = []
        for b in (Batch(seq=1, data=b"12", ends=[1, 5]), Batch(seq=1, data=b"123", ends=[2, 1, 3]),
                  Batch(seq=1, data=b"12", ends=[1, 2], ids=[7])):
            with self.assertRaises(self.Broken):
                self.run_batches(lambda x: ran.append(x), [b])
        self.assertEqual(ran, [])  # nothing of a malformed batch runs


class TaskTest(unittest.TestCase):
    def test_signature(self):
        for bad in (lambda: 1, lambda a, b: 1, 5):
            with self.assertRaises(TypeError):
                Task(bad)
        Task(lambda a, b=2: 1)
        Task(print)

    def test_string_annotations(self):
        ns = {}
        exec("from __future__ import annotations\ndef f(x: int) -> int:\n    return x\n", ns)
        self.assertEqual(Task(ns["f"]).decode(b"5"), 5)
        with self.assertRaises(pluginpool.DecodeError):
            Task(ns["f"]).decode(b'"5"')


if __name__ == "__main__":
    unittest.main()
