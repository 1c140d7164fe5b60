"""serve(): the go-plugin handshake and the services a plugin serves.

A pluginpool host starts the plugin with PLUGINPOOL_PLUGIN=worker-v1 in its
environment and reads one line from its stdout,

    1|1|unix|/tmp/pluginpool-x/plugin.sock|grpc|

(go-plugin's core protocol 1, pluginpool's protocol 1, where the gRPC
server listens, gRPC, no TLS certificate), then dials it. Served there:

- pluginpool.worker.v1.Worker (worker.proto): Describe, Init, Run.
- plugin.GRPCController/Shutdown: the host calls it when it closes a
  worker, then waits up to 2 s for the process to exit before killing it.
  Without it every pool close takes 2 s.
- plugin.GRPCStdio/StreamStdio: stray stdout, which the host prints
  tagged with the worker (see _output).
- grpc.health.v1.Health/Check for service "plugin", as go-plugin plugins
  do; pluginpool's host does not call it.

Served over TLS when the host asks for it (PLUGIN_CLIENT_CERT, see _tls).

The Run stream is served on the lane instead when the host passes one
(PLUGINPOOL_LANE_FD, see _lane): a thread started once Init has run reads
it; end-of-file before any frame means the host calls Run over gRPC.

go-plugin's GRPCBroker is not served: pluginpool's host never uses it
(its client logs nothing when StartStream fails).

The services are registered as generic handlers rather than from
grpc_python_plugin stubs: go-plugin's three services have no .proto in
this repository and their messages have one or two fields, encoded here by
hand; and stubs from newer grpcio-tools refuse to load on older grpcio.
"""

import faulthandler
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback

from . import _log
from ._ledger import open_ledger
from ._output import STDOUT, FdWriter, Stray, TaskStdout, forward_fd
from ._task import Task

VERSION = "0.1.0"

COOKIE_KEY = "PLUGINPOOL_PLUGIN"
COOKIE_VALUE = "worker-v1"
CORE_PROTOCOL = 1  # go-plugin's
APP_PROTOCOL = 1  # pluginpool's (Handshake.ProtocolVersion in the Go SDK)

# Exit status when the plugin cannot run at all: before the handshake, so
# the host reports it with the last lines of stderr.
EXIT_SETUP = 1
EXIT_ORPHANED = 3


def serve(task, *, name=None, version="0.0.0", idempotent=False, init=None, raw=False):
    """Serve ``task`` to a pluginpool host until the host stops it, then
    exit the process. Never returns.

    task: a function of one argument, the item. Its first parameter's
        annotation decides how the item's JSON is decoded (``int``,
        ``float``, ``str``, ``bool``, ``dict``, ``list``, a dataclass,
        ``Optional[...]``; none or ``Any`` for any JSON value; ``bytes`` for
        the raw JSON text); an input that does not fit fails that item with
        a ``DecodeError``. The return value is encoded as JSON; returning
        None means "no value" (a task run for what it prints).
    name: the plugin's name (default: the script's file name).
    version: the plugin's own version, shown by ``pluginpool plugins``.
    idempotent: running a task twice is harmless. Only then does the host
        re-run tasks that were in flight on a worker that crashed.
    init: called once per process, before any task, with the plugin's
        ``[plugins.NAME.config]`` table from pool.toml as a dict. An
        exception fails this worker's start; the host reports it.
    raw: the task takes the item's JSON text as bytes and returns JSON
        text (bytes or str) or None, without decoding or encoding.

    Run by hand, outside a host, it prints a one-line explanation and exits
    with status 1. Print nothing to stdout before calling it: the host reads
    the handshake from the first line there.
    """
    script = sys.argv[0] if sys.argv and sys.argv[0] else "plugin"
    if name is None:
        name = os.path.splitext(os.path.basename(script))[0] or "plugin"
    if os.environ.get(COOKIE_KEY) != COOKIE_VALUE:
        sys.stderr.write("%s is a pluginpool plugin, not a program: run it through the host, e.g. "
                         "`pluginpool map %s 1 2 3`\n" % (name, script))
        sys.exit(EXIT_SETUP)
    try:
        t = Task(task, raw=raw)
        if init is not None and not callable(init):
            raise TypeError("pluginpool.serve: init must be a function of the config dict, got %r" % (init,))
    except TypeError as e:
        _fatal(str(e))
    try:
        import grpc  # noqa: F401
        from . import worker_pb2  # noqa: F401 (needs protobuf)
    except ImportError as e:
        _fatal("%s (Python %s) cannot import the pluginpool SDK's dependencies: %s. Install them for this "
               "interpreter (apt-get install python3-grpcio python3-protobuf, or pip install grpcio protobuf); "
               "or, for a plugin run through a shebang line, name it NAME.py: the host then runs it with the "
               "first Python that has them ($PLUGINPOOL_PYTHON, a .venv beside it, python3 on PATH, ...)."
               % (sys.executable, sys.version.split()[0], e))
    _Plugin(t, name, version, idempotent, init).run()


def _fatal(msg):
    """Report a problem that stops the plugin before the handshake, on fd 2
    (where the host keeps the last lines for its error), and exit."""
    try:
        os.write(2, ("pluginpool: " + msg + "\n").encode(errors="replace"))
    finally:
        os._exit(EXIT_SETUP)


def _sdk_string():
    import grpc
    impl = sys.implementation
    return "python/%s %s-%d.%d.%d grpcio-%s" % (VERSION, impl.name, *sys.version_info[:3], grpc.__version__)


class _Plugin:
    def __init__(self, task, name, version, idempotent, init):
        self.task = task
        self.name = name
        self.version = version
        self.idempotent = idempotent
        self.init = init
        from ._runner import Settings
        self.settings = Settings()
        self.stray = Stray()
        self.stdout = TaskStdout(self.stray)
        self.ledger = None
        self.lane = None  # the lane's socket, until the thread serving it takes it
        self.cert = ""  # the handshake line's TLS certificate field
        self.shutdown = threading.Event()

    def run(self):
        _detach_stdin()
        # go-plugin plugins ignore SIGINT: Ctrl-C reaches the whole process
        # group, and the host decides what happens to its workers.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        faulthandler.enable(file=sys.__stderr__)
        sys.excepthook = _excepthook
        threading.excepthook = lambda a: _excepthook(a.exc_type, a.exc_value, a.exc_traceback)
        _log.install(os.environ.get("PLUGINPOOL_LOG_LEVEL"))
        from ._lane import open_lane  # needs protobuf: imported once serve() checked it is there
        self.ledger, ledger_problem = open_ledger()
        self.lane, lane_problem = open_lane()
        for problem in (ledger_problem, lane_problem):
            if problem:
                import logging
                logging.getLogger("pluginpool").warning(problem)
        threading.Thread(target=_watch_parent, name="pluginpool-parent", daemon=True).start()

        server, sock, cleanup = self._server()
        # The handshake: the first line on stdout. Whatever print() buffered
        # before serve() goes first and makes the host refuse the plugin,
        # as it would a Go plugin that printed before sdk.Serve.
        try:
            sys.stdout.flush()
        except Exception:
            pass
        line = "%d|%d|unix|%s|grpc|%s\n" % (CORE_PROTOCOL, APP_PROTOCOL, sock, self.cert)
        # Capture first, then write the handshake to the real stdout: the
        # host starts tasks as soon as it reads the line, and on a loaded
        # machine this thread ran again only after a whole batch whose
        # print()s had gone to the real stdout, as stray output.
        handshake = os.dup(1)
        forward_fd(1, self.stray, STDOUT)
        sys.stdout = self.stdout
        sys.stderr = FdWriter(2)
        os.write(handshake, line.encode())
        os.close(handshake)

        self.shutdown.wait()
        # Give stray output queued for the host a moment to leave.
        for _ in range(10):
            if self.stray.empty():
                break
            time.sleep(0.005)
        server.stop(None)
        cleanup()
        os._exit(0)

    def _server(self):
        import grpc
        from concurrent import futures
        from . import worker_pb2 as pb

        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=6, thread_name_prefix="pluginpool-rpc"),
            options=[
                # grpcio's default is a 4 MiB receive limit; items may be
                # up to max_item_bytes (64 MiB by default, at most 2 GiB).
                ("grpc.max_receive_message_length", -1),
                ("grpc.max_send_message_length", -1),
            ],
        )
        worker = grpc.method_handlers_generic_handler("pluginpool.worker.v1.Worker", {
            "Describe": grpc.unary_unary_rpc_method_handler(
                self._describe, pb.DescribeRequest.FromString, pb.DescribeResponse.SerializeToString),
            "Init": grpc.unary_unary_rpc_method_handler(
                self._init, pb.InitRequest.FromString, pb.InitResponse.SerializeToString),
            "Run": grpc.stream_stream_rpc_method_handler(
                self._run, pb.Batch.FromString, pb.Batch.SerializeToString),
        })
        controller = grpc.method_handlers_generic_handler("plugin.GRPCController", {
            "Shutdown": grpc.unary_unary_rpc_method_handler(self._shutdown, _ignore, _identity),
        })
        stdio = grpc.method_handlers_generic_handler("plugin.GRPCStdio", {
            "StreamStdio": grpc.unary_stream_rpc_method_handler(self._stdio, _ignore, _identity),
        })
        health = grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
            "Check": grpc.unary_unary_rpc_method_handler(_health, _ignore, _identity),
        })
        server.add_generic_rpc_handlers((worker, controller, stdio, health))

        sockdir = os.environ.get("PLUGIN_UNIX_SOCKET_DIR")
        tmpdir = None
        if sockdir:
            sock = tempfile.mktemp(prefix="plugin", dir=sockdir)
        else:
            tmpdir = tempfile.mkdtemp(prefix="pluginpool-")  # 0700: private
            sock = os.path.join(tmpdir, "plugin.sock")
        client_pem = os.environ.get("PLUGIN_CLIENT_CERT")
        if client_pem:
            from ._tls import server_credentials
            try:
                creds, self.cert = server_credentials(client_pem)
            except Exception as e:
                _fatal("cannot serve TLS: %s" % e)
            port = server.add_secure_port("unix:" + sock, creds)
        else:
            port = server.add_insecure_port("unix:" + sock)
        if not port:
            _fatal("cannot listen on unix socket %s" % sock)
        group = os.environ.get("PLUGIN_UNIX_SOCKET_GROUP")
        if group:
            _group_writable(sock, group)
        server.start()

        def cleanup():
            try:
                if tmpdir:
                    shutil.rmtree(tmpdir, ignore_errors=True)
                else:
                    os.unlink(sock)
            except OSError:
                pass
        return server, sock, cleanup

    # --- Worker ---

    def _describe(self, request, context):
        from . import worker_pb2 as pb
        return pb.DescribeResponse(name=self.name, version=self.version, idempotent=self.idempotent,
                                   sdk=_sdk_string(), start_ledger=self.ledger is not None,
                                   lane=self.lane is not None)

    def _init(self, request, context):
        import grpc
        from . import worker_pb2 as pb
        from ._codec import parse
        s = self.settings
        s.timeout = request.task_timeout_ms / 1000.0
        # The host always sends the interval its watchdog assumes; 20 ms
        # was its value before it did.
        s.flush = (request.flush_interval_ms or 20) / 1000.0
        s.max_result = request.max_result_bytes
        s.slot = request.slot
        if self.init is not None:
            try:
                config = parse(request.config or b"{}")
            except ValueError as e:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "init: the config is not JSON: %s" % e)
            try:
                self.init(config)
            except Exception as e:
                from ._runner import exception_message
                context.abort(grpc.StatusCode.UNKNOWN, "init: " + exception_message(e))
        lane, self.lane = self.lane, None
        if lane is not None:
            # Read only now: the first batch finds the plugin initialised
            # (the host writes nothing before InitResponse anyway).
            threading.Thread(target=self._serve_lane, args=(lane,), name="pluginpool-tasks", daemon=True).start()
        return pb.InitResponse()

    def _run(self, requests, context):
        from ._runner import Runner
        return Runner(self.task, self.settings, self.stdout, self.ledger).run(requests, context)

    def _serve_lane(self, sock):
        from ._lane import LaneStream
        from ._runner import Runner
        LaneStream(sock).serve(Runner(self.task, self.settings, self.stdout, self.ledger))

    # --- go-plugin ---

    def _shutdown(self, request, context):
        self.shutdown.set()
        return b""  # plugin.Empty

    def _stdio(self, request, context):
        while context.is_active() and not self.shutdown.is_set():
            chunk = self.stray.get(0.25)
            if chunk is not None:
                yield _stdio_data(*chunk)


def _ignore(data):
    # grpcio takes a None request for a failed deserialization.
    return data


def _identity(data):
    return data


def _health(request, context):
    return b"\x08\x01"  # HealthCheckResponse{status: SERVING}


def _stdio_data(channel, data):
    """go-plugin's StdioData{channel, data}, encoded by hand."""
    return b"\x08" + bytes((channel,)) + b"\x12" + _varint(len(data)) + data


def _varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _detach_stdin():
    """Point fd 0 at /dev/null: go-plugin hands a plugin the host's stdin,
    and the CLI reads its items from there; a plugin reading it would steal
    them."""
    try:
        fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(fd, 0)
        os.close(fd)
        sys.stdin = open(os.devnull)
    except OSError:
        pass


# The parent as the plugin's script began (pluginpool is imported first):
# taken when serve() starts, a host that died in between would go unseen.
_PARENT = os.getppid()


def _watch_parent(parent=None):
    """Exit when the host goes away. On Linux the host also sets the
    parent-death signal, which is immediate; this covers other systems."""
    ppid = _PARENT if parent is None else parent
    while True:
        if os.getppid() != ppid:
            os._exit(EXIT_ORPHANED)
        time.sleep(0.5)


def _excepthook(exc_type, exc, tb):
    """Uncaught exceptions go to fd 2, where the host keeps the last lines
    for its crash reports."""
    try:
        text = "".join(traceback.format_exception(exc_type, exc, tb))
        os.write(2, text.encode(errors="replace"))
    except Exception:
        pass


def _group_writable(path, group):
    import grp
    try:
        gid = int(group)
    except ValueError:
        gid = grp.getgrnam(group).gr_gid
    os.chown(path, -1, gid)
    os.chmod(path, 0o660)

