package sdk

import (
	"context"
	"errors"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	workerpb "github.com/pluginpool/pluginpool/sdk/proto"
)

// Handshake is the go-plugin handshake shared by the host and every plugin.
// A plugin in another language sets the environment check and prints the
// handshake line the same way: protocol version 1, gRPC, and the cookie
// PLUGINPOOL_PLUGIN=worker-v1.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "PLUGINPOOL_PLUGIN",
	MagicCookieValue: "worker-v1",
}

// PluginName is the name the Worker service is dispensed under.
const PluginName = "worker"

// grpcPlugin registers the Worker service with go-plugin's gRPC server. The
// client half lives in host/pool.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	srv workerpb.WorkerServer
}

func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	workerpb.RegisterWorkerServer(s, p.srv)
	return nil
}

func (p *grpcPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("sdk: the client side of the Worker service lives in host/pool")
}
