package sdk

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/experimental"

	"github.com/pluginpool/pluginpool/internal/wire"
	workerpb "github.com/pluginpool/pluginpool/sdk/proto"
)

// Version is the SDK's version, reported to the host by Describe.
const Version = "0.1.0"

// Plugin describes a plugin to Serve.
type Plugin struct {
	// Name is the plugin's name as the host reports it. Required.
	Name string
	// Version is the plugin's own version. Default "0.0.0".
	Version string
	// Idempotent declares that running a task twice is harmless. Only then
	// does the host re-run tasks that were in flight on a worker that crashed.
	Idempotent bool
	// Init, if set, runs once per process before any task, with the
	// plugin's [plugins.NAME.config] table from pool.toml as a JSON object
	// ("{}" when there is none). An error fails this worker's start, and the
	// host reports it.
	Init func(ctx context.Context, config []byte) error
	// Task runs each item. Required; build it with Func, Sink or Raw.
	Task Task
}

// Serve runs the plugin until the host stops it, then exits the process.
// It never returns. Run by hand, outside a host, it prints a one-line
// explanation and exits with status 1. It must be called from main before
// anything is written to standard output (that would break the handshake).
func Serve(p Plugin) {
	os.Exit(serve(p))
}

func serve(p Plugin) int {
	name := p.Name
	if name == "" {
		name = filepath.Base(os.Args[0])
	}
	if os.Getenv(Handshake.MagicCookieKey) != Handshake.MagicCookieValue {
		fmt.Fprintf(os.Stderr, "%s is a pluginpool plugin, not a program: run it through the host, e.g. `pluginpool map %s 1 2 3`\n", name, name)
		return 1
	}
	if p.Name == "" || p.Task == nil {
		fmt.Fprintf(os.Stderr, "%s: sdk.Plugin needs a Name and a Task\n", name)
		return 1
	}
	if p.Version == "" {
		p.Version = "0.0.0"
	}
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	detachStdin()
	go watchParent()

	// PLUGINPOOL_CPUPROFILE=DIR writes DIR/NAME-PID.pprof, for profiling
	// plugins under a real host.
	if dir := os.Getenv("PLUGINPOOL_CPUPROFILE"); dir != "" {
		if f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%d.pprof", name, os.Getpid()))); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				defer pprof.StopCPUProfile()
			}
		}
	}
	logger := defaultLogger()
	srv := &server{plugin: p, logger: logger, ledger: openLedger(), lane: openLane(), stderr: os.Stderr, inited: make(chan struct{})}
	if srv.lane != nil {
		// Ends with the process: the host ends the lane, or kills us.
		go srv.serveLane()
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         plugin.PluginSet{PluginName: &grpcPlugin{srv: srv}},
		Logger:          logger,
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			// gRPC's server default is a 4 MiB receive limit; items may be
			// far larger. The host enforces its own per-item limit.
			opts = append(opts,
				grpc.MaxRecvMsgSize(math.MaxInt32),
				grpc.MaxSendMsgSize(math.MaxInt32),
				grpc.InitialWindowSize(windowSize),
				grpc.InitialConnWindowSize(windowSize),
				grpc.ReadBufferSize(256<<10),
				grpc.WriteBufferSize(256<<10),
				grpc.ForceServerCodecV2(wire.Codec),
				experimental.BufferPool(wire.Pool),
			)
			return grpc.NewServer(opts...)
		},
	})
	return 0
}

// windowSize is the gRPC flow-control window. Batches are up to a few MiB;
// the 64 KiB default window costs round trips on every one.
const windowSize = 4 << 20

var (
	loggerOnce sync.Once
	logger     hclog.Logger
)

// defaultLogger writes JSON lines to the process's stderr, which go-plugin
// parses on the host side into the host's logger.
func defaultLogger() hclog.Logger {
	loggerOnce.Do(func() {
		level := hclog.LevelFromString(os.Getenv("PLUGINPOOL_LOG_LEVEL"))
		if level == hclog.NoLevel {
			level = hclog.Warn
		}
		logger = hclog.New(&hclog.LoggerOptions{
			Level:      level,
			Output:     os.Stderr,
			JSONFormat: true,
		})
	})
	return logger
}

// server implements the Worker service for one process.
type server struct {
	workerpb.UnimplementedWorkerServer
	plugin   Plugin
	logger   hclog.Logger
	ledger   *uint64 // the start ledger's word; nil without one
	lane     *wire.Lane
	inited   chan struct{} // closed when Init has set what follows
	initOnce sync.Once
	stderr   *os.File // the process's own stderr, before go-plugin replaced it
	slot     uint32
	timeout  time.Duration
	flush    time.Duration
	// maxResult bounds one item's answer (its result, error message and
	// printed lines) and, where items are smaller, each response: the
	// host refuses larger messages. 0: no limit (a host that did not say).
	maxResult int
}

func (s *server) Describe(context.Context, *workerpb.DescribeRequest) (*workerpb.DescribeResponse, error) {
	if s.stderr != nil && os.Stderr != s.stderr {
		// go-plugin's Serve points os.Stderr at a pipe that a goroutine of
		// this process forwards to the host over gRPC: a line written just
		// before os.Exit dies in that pipe. Writing to the real stderr, the
		// host reads it even after the process is gone and can quote it in
		// a crash report (issue 8, case 6); it forwards the lines that are
		// not log records as go-plugin did. The host calls Describe first,
		// before anything else runs here.
		unbufferStderr(s.stderr)
	}
	return &workerpb.DescribeResponse{
		Name:        s.plugin.Name,
		Version:     s.plugin.Version,
		Idempotent:  s.plugin.Idempotent,
		Sdk:         "go/" + Version,
		StartLedger: s.ledger != nil,
		Lane:        s.lane != nil,
	}, nil
}

func (s *server) Init(ctx context.Context, req *workerpb.InitRequest) (resp *workerpb.InitResponse, err error) {
	defer func() {
		// After the plugin's Init (and the recover below): its tasks may
		// read what it set, on the lane's goroutine.
		if err == nil && s.inited != nil {
			s.initOnce.Do(func() { close(s.inited) })
		}
	}()
	s.slot = req.Slot
	s.timeout = time.Duration(req.TaskTimeoutMs) * time.Millisecond
	s.maxResult = int(min(req.MaxResultBytes, math.MaxInt32))
	s.flush = time.Duration(req.FlushIntervalMs) * time.Millisecond
	if s.flush <= 0 {
		s.flush = defaultFlush
	}
	if s.plugin.Init == nil {
		return &workerpb.InitResponse{}, nil
	}
	cfg := req.Config
	if len(cfg) == 0 {
		cfg = []byte("{}")
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("init panicked: %v\n\n%s", r, debug.Stack())
		}
	}()
	if err := s.plugin.Init(ctx, cfg); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	return &workerpb.InitResponse{}, nil
}

// defaultFlush is how often a running batch reports finished items.
const defaultFlush = 20 * time.Millisecond

// errTimeout is what a task's ctx.Err() returns after task_timeout.
var errTimeout = fmt.Errorf("task timed out: %w", context.DeadlineExceeded)

// isCanceled reports whether err came from ctx's cancellation.
func isCanceled(err error) bool {
	return errors.Is(err, context.Canceled)
}
