"""serve() outside a host, and the parent watch, as processes."""

import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SDK = os.path.dirname(HERE)


def python(code, **kw):
    env = dict(os.environ, PYTHONPATH=SDK, PYTHONDONTWRITEBYTECODE="1")
    env.pop("PLUGINPOOL_PLUGIN", None)
    env.update(kw.pop("env", {}))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True,
                          text=True, timeout=60, **kw)


class ServeTest(unittest.TestCase):
    def test_run_by_hand(self):
        r = python("""
            import sys, pluginpool
            sys.argv[0] = "double.py"
            pluginpool.serve(lambda x: x)
        """)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "")
        self.assertIn("double is a pluginpool plugin, not a program: run it through the host", r.stderr)

    def test_bad_task(self):
        r = python("""
            import pluginpool
            pluginpool.serve(lambda a, b: a)
        """, env={"PLUGINPOOL_PLUGIN": "worker-v1"})
        self.assertEqual(r.returncode, 1)
        self.assertIn("the task must take exactly one argument", r.stderr)
        self.assertEqual(r.stdout, "")  # no handshake

    def test_without_grpc(self):
        # Importing the package needs only the standard library; serve()
        # says what is missing, before the handshake.
        r = python("""
            import sys

            class Block:
                def find_spec(self, name, path=None, target=None):
                    if name.split(".")[0] in ("google", "grpc"):
                        raise ImportError("no module named " + name)
            sys.meta_path.insert(0, Block())
            import pluginpool
            print("imported")
            pluginpool.serve(lambda x: x)
        """, env={"PLUGINPOOL_PLUGIN": "worker-v1"})
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stdout, "imported\n")
        self.assertIn("cannot import the pluginpool SDK's dependencies", r.stderr)

    def test_handshake_line(self):
        # The plugin is killed, so it cannot remove its socket: give it a
        # directory of the test's own, as the host gives each pool one.
        sockdir = tempfile.mkdtemp(prefix="pluginpool-test-")
        self.addCleanup(shutil.rmtree, sockdir, ignore_errors=True)
        with subprocess.Popen([sys.executable, "-c", "import pluginpool; pluginpool.serve(lambda x: x)"],
                              env=dict(os.environ, PYTHONPATH=SDK, PLUGINPOOL_PLUGIN="worker-v1",
                                       PLUGIN_UNIX_SOCKET_DIR=sockdir),
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                              text=True) as p:
            try:
                line = p.stdout.readline()
                fields = line.rstrip("\n").split("|")
                self.assertEqual(fields[:3], ["1", "1", "unix"], line)
                self.assertEqual(fields[4:], ["grpc", ""], line)
                self.assertTrue(os.path.exists(fields[3]), line)
            finally:
                p.kill()

    def start_with_lane(self):
        """A plugin process started as a host would, with a lane; returns
        the process, a gRPC channel to it and the host's end of the lane."""
        import grpc
        sockdir = tempfile.mkdtemp(prefix="pluginpool-test-")
        self.addCleanup(shutil.rmtree, sockdir, ignore_errors=True)
        host, plugin = socket.socketpair()
        self.addCleanup(host.close)
        code = textwrap.dedent("""
            import os, subprocess, pluginpool
            FD = int(os.environ["PLUGINPOOL_LANE_FD"])
            CONF = {}
            def task(x):
                try:
                    inheritable = os.get_inheritable(FD)
                except OSError:
                    inheritable = "closed"
                # What a child started the way os.system does (every
                # inheritable descriptor passed) has open.
                child = subprocess.run(["ls", "-l", "/proc/self/fd/"], close_fds=False, capture_output=True, text=True)
                return [CONF.get("k"), os.environ.get("PLUGINPOOL_LANE_FD"), inheritable, "socket:" in child.stdout]
            pluginpool.serve(task, init=CONF.update)
        """)
        p = subprocess.Popen([sys.executable, "-c", code], pass_fds=(plugin.fileno(),),
                             env=dict(os.environ, PYTHONPATH=SDK, PLUGINPOOL_PLUGIN="worker-v1",
                                      PLUGIN_UNIX_SOCKET_DIR=sockdir, PLUGINPOOL_LANE_FD=str(plugin.fileno())),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        plugin.close()
        self.addCleanup(p.stderr.close)
        self.addCleanup(p.stdout.close)
        self.addCleanup(p.wait)
        self.addCleanup(p.kill)
        line = p.stdout.readline().decode()
        if not line.startswith("1|1|unix|"):
            p.kill()
            self.fail("no handshake: %r; stderr: %s" % (line, p.stderr.read().decode()))
        channel = grpc.insecure_channel("unix:" + line.split("|")[3])
        self.addCleanup(channel.close)
        return p, channel, host

    def call(self, channel, method, req, resp_type):
        return channel.unary_unary("/pluginpool.worker.v1.Worker/" + method, request_serializer=type(req).SerializeToString,
                                   response_deserializer=resp_type.FromString)(req, timeout=30)

    def test_lane(self):
        import grpc
        # The Run stream on the lane, read only after Init ran (a frame
        # written before Init finds the config set); the variable unset
        # and the descriptor kept from child processes (a child has no
        # socket open).
        from pluginpool import worker_pb2 as pb
        p, channel, host = self.start_with_lane()
        self.assertTrue(self.call(channel, "Describe", pb.DescribeRequest(), pb.DescribeResponse).lane)
        body = pb.Batch(seq=1, data=b"0", ends=[1], base_id=1, attempt=1).SerializeToString()
        host.sendall(struct.pack("<I", len(body)) + body)
        time.sleep(0.1)  # not asserted otherwise: a plugin reading now would run the task before Init
        self.call(channel, "Init", pb.InitRequest(config=b'{"k": 5}', flush_interval_ms=20), pb.InitResponse)
        host.settimeout(30)
        n = struct.unpack("<I", _recv_exactly(host, 4))[0]
        r = pb.Batch.FromString(_recv_exactly(host, n))
        self.assertEqual((r.seq, r.first, r.data, list(r.ends)), (1, 0, b"[5,null,false,false]", [20]))
        try:
            channel.unary_unary("/plugin.GRPCController/Shutdown")(b"", timeout=30)
        except grpc.RpcError:
            pass  # the plugin may exit before its answer leaves (the host does not wait for it)
        self.assertEqual(p.wait(30), 0)

    def test_lane_refused(self):
        # The host closes its end without a frame: Run comes over gRPC.
        from pluginpool import worker_pb2 as pb
        p, channel, host = self.start_with_lane()
        self.call(channel, "Describe", pb.DescribeRequest(), pb.DescribeResponse)
        self.call(channel, "Init", pb.InitRequest(config=b'{"k": 6}', flush_interval_ms=20), pb.InitResponse)
        host.shutdown(socket.SHUT_WR)
        host.settimeout(30)
        self.assertEqual(host.recv(1), b"")  # the plugin let go of its end
        run = channel.stream_stream("/pluginpool.worker.v1.Worker/Run", request_serializer=pb.Batch.SerializeToString,
                                    response_deserializer=pb.Batch.FromString)
        got = list(run(iter([pb.Batch(seq=1, data=b"0", ends=[1], base_id=1, attempt=1)]), timeout=30))
        self.assertEqual([r.data for r in got], [b'[6,null,"closed",false]'])
        p.kill()

    def test_exits_when_its_parent_dies(self):
        # A parent that starts a process watching it, then dies: the child
        # must follow within the watch period (0.5 s), here 20 s at most.
        r = python("""
            import os, subprocess, sys
            child = subprocess.Popen([sys.executable, "-c",
                "import time, threading; from pluginpool import _serve; "
                "threading.Thread(target=_serve._watch_parent, daemon=True).start(); "
                "print('ready', flush=True); time.sleep(120)"], stdout=subprocess.PIPE, text=True)
            assert child.stdout.readline() == "ready\\n"
            print(child.pid, flush=True)
            os._exit(0)
        """)
        # run() returned: the child, which holds the stderr it inherited,
        # has exited (or 60 s passed, and run() raised).
        pid = int(r.stdout.split()[0])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)
        alive = _alive(pid)
        if alive:
            os.kill(pid, signal.SIGKILL)
        self.assertFalse(alive, "the orphaned watcher is still running")


def _recv_exactly(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise EOFError("the lane ended after %d of %d bytes" % (len(out), n))
        out += chunk
    return out


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except OSError:
        return True


if __name__ == "__main__":
    unittest.main()
