package serve

import (
	"runtime"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/mem"

	"github.com/egressgate/egressgate/extproc"
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

// extProcServerOptions are what both ext_proc servers (serve's built-in
// one and the sidecar) add: the caller key check, and a pool of stream
// workers. Envoy opens one stream per agent request; without workers gRPC
// starts a goroutine per stream, and each grows its stack afresh (stack
// growth was 4 % of the server's CPU under load).
func extProcServerOptions(callerKey func() string) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.StreamInterceptor(extproc.CallerKeyInterceptor(callerKey)),
		grpc.NumStreamWorkers(uint32(runtime.GOMAXPROCS(0))),
		// On a route with DLP on, Envoy sends the buffered body in one
		// message: up to the route's max_body_bytes, far past gRPC's
		// 4 MiB default, which would fail such requests closed.
		grpc.MaxRecvMsgSize(extproc.MaxMessageSize),
		experimental.BufferPool(newExtProcBufferPool()),
	}
}

// newExtProcBufferPool holds the buffers gRPC reads messages into. gRPC's
// default pool rounds anything over 32 KiB up to a 1 MiB buffer and zeroes
// it whole on every use: for a scanned route's 64 KiB body that was a
// tenth of the server's CPU. Every power of two up to the largest message
// keeps the waste under half; buffers are still zeroed (they held agents'
// requests).
func newExtProcBufferPool() mem.BufferPool {
	var exps []uint8
	for e := uint8(8); 1<<e < 2*extproc.MaxMessageSize; e++ {
		exps = append(exps, e)
	}
	p, err := mem.NewBinaryTieredBufferPool(exps...)
	if err != nil {
		panic(err) // the exponents above are valid
	}
	return p
}
