"""serve() outside a host, and the parent watch, as processes."""

import os
import shutil
import signal
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
