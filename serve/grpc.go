package serve

import (
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// newGRPCServer carries the settings Envoy's long-lived xDS and ext_proc
// streams need.
func newGRPCServer(extra ...grpc.ServerOption) *grpc.Server {
	opts := []grpc.ServerOption{
		// Envoy multiplexes every ADS type and every ext_proc request over
		// one connection; gRPC's default of 100 concurrent streams would
		// queue requests under load.
		grpc.MaxConcurrentStreams(1 << 20),
		// Envoy sends HTTP/2 keepalive pings on its own schedule; refusing
		// them as abusive would drop the connection.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		// Detect a vanished Envoy so its streams are released.
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 5 * time.Second}),
	}
	return grpc.NewServer(append(opts, extra...)...)
}
