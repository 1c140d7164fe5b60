"""The Run stream on the lane, driven over a real socket pair: the test
plays the host's end, writing and reading frames by hand."""

import collections
import os
import queue
import socket
import struct
import threading
import time
import unittest

import pluginpool
from pluginpool._lane import LaneStream, open_lane
from pluginpool._runner import KIND_CANCELED, Settings
from pluginpool.worker_pb2 import Batch
import test_runner  # not its names: unittest would run RunnerTest here again
from test_runner import WAIT, items_of, merged, request


class StreamBroken(Exception):
    """The plugin closed the lane before the host ended the stream."""


def frame(b):
    body = b.SerializeToString()
    return struct.pack("<I", len(body)) + body


def recv_exactly(sock, n):
    """n bytes, or fewer at end-of-file."""
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            break
        out += chunk
    return bytes(out)


class LaneHost:
    """The host's end of the lane: frames out, answers read by a thread of
    its own (as the Go host has a receiver goroutine), the plugin's side
    served by LaneStream on a thread of its own."""

    def __init__(self, runner):
        self.sock, plugin = socket.socketpair()
        self.answers = queue.Queue()
        self.items = {}  # seq -> items sent, for close()
        self.answered = collections.Counter()  # seq -> items answered
        self.cond = threading.Condition()
        self.eof = False  # the plugin's end is closed
        self.closed = False  # the host ended its side
        self.broken = False  # end-of-file came before the host ended its side
        self.used = None  # what LaneStream.serve returned
        self.plugin = threading.Thread(target=self._serve, args=(LaneStream(plugin), runner))
        self.reader = threading.Thread(target=self._read)
        self.plugin.start()
        self.reader.start()

    def _serve(self, stream, runner):
        self.used = stream.serve(runner)

    def _read(self):
        while True:
            head = recv_exactly(self.sock, 4)
            body = recv_exactly(self.sock, struct.unpack("<I", head)[0]) if len(head) == 4 else b""
            if len(head) < 4:
                assert not head, "the plugin cut a frame's length short"
                with self.cond:
                    self.eof, self.broken = True, not self.closed
                    self.cond.notify_all()
                return
            r = Batch.FromString(body)
            with self.cond:
                self.answered[r.seq] += len(r.ends)
                self.cond.notify_all()
            self.answers.put(r)

    def write(self, data):
        self.sock.sendall(data)

    def send(self, b):
        if not b.cancel:
            self.items[b.seq] = len(b.ends)
        self.write(frame(b))

    def close(self):
        """Once every request is answered, end the stream (closing the lane
        cancels what runs: gRPC's half-close has no equal here)."""
        with self.cond:
            self.cond.wait_for(lambda: self.eof or all(self.answered[s] >= n for s, n in self.items.items()), WAIT)
        self.end()

    def end(self):
        with self.cond:
            self.closed = True
        self.sock.shutdown(socket.SHUT_WR)

    def join(self):
        self.plugin.join(WAIT)
        self.reader.join(WAIT)
        assert not self.plugin.is_alive() and not self.reader.is_alive(), "the lane's stream did not end"
        self.sock.close()
        out = []
        while not self.answers.empty():
            out.append(self.answers.get())
        if self.broken:
            raise StreamBroken()
        return out


class LaneRunnerTest(test_runner.RunnerTest):
    """Every case of the gRPC Run stream, on the lane."""

    Host = LaneHost
    Broken = StreamBroken

    def test_malformed_batch(self):
        with self.assertLogs("pluginpool", "ERROR") as logs:
            super().test_malformed_batch()
        self.assertIn("Run stream on the lane broken: malformed batch 1", logs.output[0])


class LaneTest(unittest.TestCase):
    setUp = test_runner.RunnerTest.setUp
    runner = test_runner.RunnerTest.runner

    def test_end_of_file_before_any_frame(self):
        # The host chose gRPC: not an error, nothing sent, the lane let go.
        host = LaneHost(self.runner(lambda x: x))
        host.end()
        self.assertEqual(host.join(), [])
        self.assertIs(host.used, False)

    def test_frames_in_any_pieces(self):
        # Several frames in one write, one frame over many writes, and a
        # frame larger than one read (64 KiB).
        host = LaneHost(self.runner(lambda x: x))
        host.items = {1: 2, 2: 1, 3: 1, 4: 30000}
        host.write(frame(request(1, [b"1", b"2"])) + frame(request(2, [b"3"])))
        for c in frame(request(3, [b'"slow"'])):
            host.write(bytes((c,)))
            time.sleep(0.001)
        big = [str(i).encode() for i in range(30000)]
        f = frame(request(4, big))
        self.assertGreater(len(f), 128 << 10)
        host.write(f[:3])
        time.sleep(0.01)
        host.write(f[3:])
        host.close()
        got = host.join()
        self.assertEqual([(r.seq, r.first) for r in got[:3]], [(1, 0), (2, 0), (3, 0)])
        self.assertEqual(items_of(got[0]) + items_of(got[1]) + items_of(got[2]), [b"1", b"2", b"3", b'"slow"'])
        self.assertEqual(merged(got[3:])[0], big)

    def test_cancel_in_the_same_write(self):
        # A cancel that arrives with its request: nothing of the batch runs.
        ran = []
        host = LaneHost(self.runner(ran.append))
        host.items = {1: 2}
        host.write(frame(request(1, [b"1", b"2"])) + frame(Batch(seq=1, cancel=True)))
        host.close()
        values, errors, _ = merged(host.join())
        self.assertEqual(ran, [])
        self.assertEqual(values, [b"", b""])
        self.assertEqual({i: e[0] for i, e in errors.items()}, {0: KIND_CANCELED, 1: KIND_CANCELED})

    def test_cancel_while_idle_then_batch(self):
        # A cancel for a batch already answered is ignored.
        host = LaneHost(self.runner(lambda x: x))
        host.send(request(1, [b"1"]))
        self.assertEqual(items_of(host.answers.get(timeout=WAIT)), [b"1"])
        host.send(Batch(seq=1, cancel=True))
        host.send(request(2, [b"2"]))
        host.close()
        self.assertEqual([items_of(r) for r in host.join()], [[b"2"]])

    def test_frame_that_is_not_a_batch(self):
        # The plugin refuses it by closing the lane: the host sees the
        # stream break, and the log says why.
        host = LaneHost(self.runner(lambda x: x))
        with self.assertLogs("pluginpool", "ERROR") as logs:
            host.write(struct.pack("<I", 5) + b"\xff\xff\xff\xff\xff")
            with self.assertRaises(StreamBroken):
                host.join()
        self.assertIn("a frame of 5 bytes is not a Batch", logs.output[0])

    def test_length_longer_than_what_follows(self):
        # A length the host never fills: its end-of-file ends the stream,
        # as the host going away mid-write does.
        for data in (struct.pack("<I", 100) + b"0123456789", b"\x05\x00"):
            host = LaneHost(self.runner(lambda x: x))
            host.write(data)
            host.end()
            self.assertEqual(host.join(), [])

    def test_host_gone_while_answering(self):
        # The host closes the whole socket: writes fail, the stream ends,
        # the running task is cancelled.
        started = threading.Event()

        def task(x):
            started.set()
            return pluginpool.context().wait(WAIT)
        host = LaneHost(self.runner(task, Settings(flush=0.001)))
        host.send(request(1, [b"1", b"2", b"3"]))
        self.assertTrue(started.wait(WAIT))
        host.sock.shutdown(socket.SHUT_RDWR)
        host.plugin.join(WAIT)
        host.reader.join(WAIT)
        host.sock.close()
        self.assertFalse(host.plugin.is_alive())


class OpenLaneTest(unittest.TestCase):
    def test_offers(self):
        self.assertEqual(open_lane({}), (None, None))
        self.assertEqual(open_lane({"PLUGINPOOL_LANE_FD": ""}), (None, None))
        self.assertIn("stdio", open_lane({"PLUGINPOOL_LANE_FD": "1"})[1])
        lane, problem = open_lane({"PLUGINPOOL_LANE_FD": "three"})
        self.assertIsNone(lane)
        self.assertIn("lane not used", problem)
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        self.addCleanup(os.close, w)
        env = {"PLUGINPOOL_LANE_FD": str(r)}
        lane, problem = open_lane(env)
        self.assertIsNone(lane)
        self.assertIn("lane not used: PLUGINPOOL_LANE_FD=%d" % r, problem)
        self.assertEqual(env, {})  # unset all the same
        os.fstat(r)  # left alone
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as d:
            lane, problem = open_lane({"PLUGINPOOL_LANE_FD": str(d.fileno())})
            self.assertIsNone(lane)
            self.assertIn("not a unix stream socket", problem)
            os.fstat(d.fileno())

    def test_takes_a_stream_socket(self):
        a, b = socket.socketpair()
        self.addCleanup(a.close)
        fd = b.detach()
        os.set_inheritable(fd, True)  # as the host passes it
        env = {"PLUGINPOOL_LANE_FD": str(fd)}
        lane, problem = open_lane(env)
        self.addCleanup(lane.close)
        self.assertIsNone(problem)
        self.assertEqual(lane.fileno(), fd)
        self.assertNotIn("PLUGINPOOL_LANE_FD", env)  # let go of
        self.assertFalse(os.get_inheritable(fd))  # kept from child processes
        a.sendall(b"x")
        self.assertEqual(lane.recv(1), b"x")

    def test_off(self):
        # PLUGINPOOL_LANE=off: the lane is refused, its end closed.
        a, b = socket.socketpair()
        self.addCleanup(a.close)
        fd = b.detach()
        env = {"PLUGINPOOL_LANE_FD": str(fd), "PLUGINPOOL_LANE": "off"}
        self.assertEqual(open_lane(env), (None, None))
        self.assertNotIn("PLUGINPOOL_LANE_FD", env)
        a.settimeout(WAIT)
        self.assertEqual(a.recv(1), b"")
        with self.assertRaises(OSError):
            os.fstat(fd)


if __name__ == "__main__":
    unittest.main()
