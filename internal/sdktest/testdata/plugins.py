"""The Python implementation of the behaviour suite's plugins
(internal/sdktest): SDKTEST_PLUGIN picks one; each behaves as the Go one of
the same name in plugins_test.go."""

import logging
import os
import sys
import time

import pluginpool

NAME = os.environ.get("SDKTEST_PLUGIN", "")
DIR = os.environ.get("SDKTEST_DIR", "")


def marker_once(key):
    try:
        os.close(os.open(os.path.join(DIR, key), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        return True
    except FileExistsError:
        return False


def count(name):
    with open(os.path.join(DIR, name), "a") as f:
        f.write("x")


def serve(task, **kw):
    kw.setdefault("idempotent", True)
    pluginpool.serve(task, name=NAME, version="1.2.3", **kw)


if NAME == "double":
    def double(n: int) -> int:
        return 2 * n
    serve(double)

elif NAME == "errors":
    def errors(x):
        if x == "fail":
            raise ValueError("failed on purpose")
        if x == "panic":
            raise RuntimeError("boom")
        if x == "retry":
            if pluginpool.context().attempt < 2:
                raise pluginpool.Retry("transient")
            return "retried"
        if x == "retryforever":
            count("retryforever")
            raise pluginpool.Retry("always transient")
        if x == "decode":
            raise pluginpool.DecodeError("cannot decode input \"decode\" as x: not for me")
        if type(x) not in (int, float):
            raise TypeError("want a number, got %s" % type(x).__name__)
        return 2 * x
    serve(errors)

elif NAME == "crashonce":
    def crashonce(n: int) -> int:
        if not marker_once("ran-%d" % n):
            count("twice")
        if str(n) == os.environ.get("SDKTEST_CRASH_ON") and marker_once("crashed"):
            os._exit(9)
        return 2 * n
    serve(crashonce, idempotent=not os.environ.get("SDKTEST_NOTIDEMPOTENT"))

elif NAME == "sleep":
    def sleep(s: str) -> str:
        if s == "sleep":
            ctx = pluginpool.context()
            ctx.wait()
            ctx.check()
        if s == "hang":
            time.sleep(3600)
        return s
    serve(sleep)

elif NAME == "slow":
    def slow(n: int) -> int:
        count("started")
        ctx = pluginpool.context()
        if ctx.wait(n / 1000):
            count("cancelled")
            ctx.check()
        return n
    serve(slow)

elif NAME == "print":
    def show(n: int):
        print("Number: %d" % n)
        if n % 10 == 0:
            print("line one\nline two")
        if n == -1:
            os.write(1, b"stray stdout\n")
            print("stray stderr", file=sys.stderr)
    serve(show)

elif NAME == "log":
    log = logging.getLogger("fixture")

    def logs(n: int) -> int:
        log.warning("fixture warning", extra={"item": n})
        log.info("fixture info", extra={"item": n})
        return n
    serve(logs)

elif NAME == "size":
    serve(lambda raw: str(len(raw)), raw=True)

elif NAME == "repeat":
    def repeat(n: int) -> str:
        return "x" * n
    serve(repeat)

elif NAME == "config":
    cfg = {}

    def init(config):
        cfg.update(config)

    def lookup(key: str):
        # None would mean "no value"; raw JSON bytes pass through as they are.
        return cfg[key] if key in cfg else b"null"
    serve(lookup, init=init)

elif NAME == "initfail":
    def init(config):
        raise ConnectionError("database unreachable")
    serve(lambda n: n, init=init)

elif NAME == "ids":
    def ids(_):
        c = pluginpool.context()
        return [c.id, c.attempt]
    serve(ids)

elif NAME == "stdin":
    def stdin(_):
        return os.read(0, 100).decode()
    serve(stdin)

else:
    sys.stderr.write("unknown plugin %r\n" % NAME)
    sys.exit(2)
