package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"google.golang.org/grpc"

	"github.com/egressgate/egressgate/extproc"
	"github.com/egressgate/egressgate/pki"
	"github.com/egressgate/egressgate/xds"
)

// readyTimeout bounds start-up: Envoy starting, fetching and acknowledging
// its first configuration takes a second or two; a minute means it never
// will, and the user is better served by an error than by waiting.
const readyTimeout = time.Minute

// Run serves until ctx is done (clean stop, nil error) or something it
// depends on fails (an error whose first line says what).
func Run(ctx context.Context, o Options) error {
	o.setDefaults()
	log := o.Logger
	ca, err := pki.LoadOrCreateCA(o.StateDir, time.Now())
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	xdsServer := xds.NewServer(ctx, log)
	xdsAddr, stopXDS, err := serveGRPC(o.Listen, xdsServer.Register, log)
	if err != nil {
		return fmt.Errorf("xds server: %w", err)
	}
	defer stopXDS()

	extProcAddr, ep := o.ExtProcAddress, (*extproc.Server)(nil)
	if extProcAddr == "" {
		ep = extproc.New(log.With("component", "extproc"), time.Now)
		addr, stop, err := serveGRPC(o.ExtProcListen, ep.Register, log)
		if err != nil {
			return fmt.Errorf("ext_proc server: %w", err)
		}
		defer stop()
		extProcAddr = addr
	}

	b := &bottle{opts: &o, log: log, ca: ca, xds: xdsServer, extProc: ep, extProcAddr: extProcAddr}
	if err := b.apply(ctx); err != nil {
		return err
	}
	node := b.current.policy.Name

	var envoyDone <-chan struct{}
	if !o.ExternalEnvoy {
		proc, err := startEnvoy(ctx, &o, node, xdsAddr)
		if err != nil {
			return err
		}
		defer stopEnvoy(proc, log)
		envoyDone = proc.Done()
		if err := waitReady(ctx, xdsServer, node, proc); err != nil {
			return err
		}
	} else {
		log.Info("waiting for an external envoy", "node", node, "xds", xdsAddr)
		if err := xdsServer.WaitAcked(ctx, node); err != nil {
			return err
		}
	}
	fmt.Fprintf(o.Stdout, "egressgate ready: bottle %s, proxy %s, xds %s, config %s\n",
		node, o.ProxyListen, xdsAddr, b.current.version())

	for {
		select {
		case <-ctx.Done():
			log.Info("stopping", "reason", context.Cause(ctx))
			return nil
		case <-envoyDone:
			return errors.New("envoy exited unexpectedly; see its log in the state dir")
		case <-o.Reload:
			if err := b.apply(ctx); err != nil {
				// The last good policy keeps serving.
				log.Error("reload failed; keeping the previous configuration", "error", err)
			}
		}
	}
}

// serveGRPC listens on addr and serves the services register adds, until
// the returned stop is called.
func serveGRPC(addr string, register func(g grpcRegistrar), log *slog.Logger) (string, func(), error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	g := newGRPCServer()
	register(g)
	go func() {
		if err := g.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			log.Error("grpc server stopped", "addr", lis.Addr().String(), "error", err)
		}
	}()
	return lis.Addr().String(), g.Stop, nil
}
