package sdktest_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/pluginpool/pluginpool/internal/python"
	"github.com/pluginpool/pluginpool/sdk"
	workerpb "github.com/pluginpool/pluginpool/sdk/proto"
)

// TestAutoMTLS: with go-plugin's AutoMTLS (PLUGIN_CLIENT_CERT), every SDK
// serves TLS with a certificate of its own that the host accepts, and
// requires the host's.
func TestAutoMTLS(t *testing.T) {
	for _, im := range implementations {
		t.Run(im.name, func(t *testing.T) {
			path, env := im.plugin(t)
			cmd := exec.Command(path)
			if python.IsScript(path) {
				py, err := python.Find(context.Background(), "testdata")
				if err != nil {
					t.Fatal(err)
				}
				sdkDir, err := python.SDKPath()
				if err != nil {
					t.Fatal(err)
				}
				cmd = exec.Command(py.Executable, path)
				env = python.Env(env, sdkDir)
			}
			cmd.Env = append(append(os.Environ(), env...), pluginEnv+"=double", "SDKTEST_DIR="+t.TempDir())
			client := plugin.NewClient(&plugin.ClientConfig{
				HandshakeConfig:  sdk.Handshake,
				Plugins:          plugin.PluginSet{sdk.PluginName: workerPlugin{}},
				Cmd:              cmd,
				AutoMTLS:         true,
				AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
				Logger:           hclog.NewNullLogger(),
				SkipHostEnv:      true, // cmd.Env holds it, PYTHONPATH last
			})
			defer client.Kill()
			rpc, err := client.Client()
			if err != nil {
				t.Fatalf("handshake with AutoMTLS: %v", err)
			}
			raw, err := rpc.Dispense(sdk.PluginName)
			if err != nil {
				t.Fatal(err)
			}
			desc, err := raw.(workerpb.WorkerClient).Describe(context.Background(), &workerpb.DescribeRequest{})
			if err != nil || desc.Name != "double" {
				t.Fatalf("Describe over TLS: %v, %v", desc, err)
			}
		})
	}
}

type workerPlugin struct{ plugin.NetRPCUnsupportedPlugin }

func (workerPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return errors.New("client only")
}

func (workerPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return workerpb.NewWorkerClient(conn), nil
}
