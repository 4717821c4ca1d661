package serve

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/egressgate/egressgate/admin"
	"github.com/egressgate/egressgate/internal/securefile"
	"github.com/egressgate/egressgate/pki"
	"github.com/egressgate/egressgate/xds"
	"github.com/egressgate/egressgate/xdsauth"
	"github.com/egressgate/egressgate/xdsserver"
)

// controlPlane is what serve and control share: the CA, the token
// authority, the xDS server and the plane of bottles.
type controlPlane struct {
	*plane
	auth *xdsauth.Authority
	// controlCA vouches for control's xDS server and the sidecars' ext_proc
	// servers (control mode; nil in serve, whose links stay on loopback).
	controlCA *pki.CA
	obs       *observability
	xdsAddr   string
	stop      func()
}

// startControlPlane loads the state dir, starts the authenticated xDS
// server and compiles every manifest. Nothing is served to Envoy until
// every manifest has compiled.
func startControlPlane(ctx context.Context, c *Common, cfg planeConfig, manifests []string) (*controlPlane, error) {
	// One running egressgate per state dir: a second would rewrite the
	// first one's bootstraps and tokens under its Envoy.
	release, err := securefile.ClaimDir(c.StateDir)
	if errors.Is(err, securefile.ErrInUse) {
		return nil, fmt.Errorf("state dir %s is in use by another egressgate (serve or control); stop it, or give this one its own --state-dir", c.StateDir)
	}
	if err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	started := false
	defer func() {
		if !started {
			release()
		}
	}()
	ca, err := pki.LoadOrCreateCA(c.StateDir, time.Now())
	if err != nil {
		return nil, err
	}
	auth, err := xdsauth.LoadOrCreateKey(c.StateDir)
	if err != nil {
		return nil, err
	}
	// What agent-env planted in each bottle's agent environment, read
	// from the state dir it writes them to.
	if cfg.canaries, err = newCanaryFiles(c.StateDir, c.Logger); err != nil {
		return nil, err
	}
	obs := newObservability()
	p := &plane{cfg: cfg, log: c.Logger, ca: ca, now: time.Now}
	p.metrics = admin.NewMetrics(obs.registry, p.slots)
	receiver, sink := startAudit(ctx, c, p.metrics, c.Logger)
	x := xdsserver.NewServer(ctx, c.Logger, xdsauth.NewNodeGuard().Callbacks)
	x.Observe(xdsserver.Events{Pushed: p.metrics.XDSPushed, Acked: p.metrics.XDSAcked, Rejected: p.metrics.XDSRejected})
	p.xds = x
	p.metrics.EnvoysConnected(p.envoysConnected)
	register := func(g *grpc.Server) {
		x.Register(g)
		receiver.Register(g)
	}
	opts := []grpc.ServerOption{
		grpc.StreamInterceptor(auth.StreamInterceptor(time.Now)),
		grpc.UnaryInterceptor(auth.UnaryInterceptor(time.Now)),
		// One control plane holds two long-lived connections per bottle
		// that are idle nearly all the time. gRPC's 32 KiB read and write
		// buffers per connection were half of control's heap with a
		// thousand bottles; unbuffered ones cost a few more syscalls on a
		// push and nothing else.
		grpc.ReadBufferSize(xdsConnBuffer),
		grpc.WriteBufferSize(xdsConnBuffer),
	}
	// control's xDS crosses hosts and container networks: tokens and slot
	// values must not travel in clear, so it speaks TLS only, and so does
	// serve's when an ext_proc sidecar (--extproc-address) subscribes to
	// it. Otherwise serve's stays plaintext on loopback, between egressgate
	// and its own Envoy.
	var controlCA *pki.CA
	if cfg.mode == "control" || cfg.extProcAddr != "" {
		if controlCA, err = pki.LoadOrCreateControlCA(c.StateDir, time.Now()); err != nil {
			return nil, err
		}
		opts = append(opts, tlsServerCreds(controlCA, serverNames(c.Listen, c.XDSAddress)))
	}
	addr, stop, err := serveGRPC(c.Listen, register, c.Logger, opts...)
	if err != nil {
		return nil, fmt.Errorf("xds server: %w", err)
	}
	// By default each bottle's ext_proc caller key comes from its xDS token,
	// which a sidecar ext_proc server can derive too.
	p.cfg.extProcKey = func(bottle string) (string, error) {
		token, _, err := auth.EnsureToken(bottle, xdsauth.RoleExtProc, time.Now())
		if err != nil {
			return "", err
		}
		return xdsauth.ExtProcKey(token), nil
	}
	p.cfg.auditKey = auth.AuditKey
	p.cfg.controlCA = controlCA
	p.addManifests(manifests)
	started = true
	cp := &controlPlane{plane: p, auth: auth, controlCA: controlCA, obs: obs, xdsAddr: addr, stop: func() { stop(); sink.Close(); release() }}
	return cp, nil
}

// xdsConnBuffer is the read and write buffer of each xDS connection: none.
const xdsConnBuffer = 0

// xdsCA is the PEM a bootstrap must trust to reach this control plane's
// xDS, or "" where it is plaintext.
func (cp *controlPlane) xdsCA() string {
	if cp.controlCA == nil {
		return ""
	}
	return string(cp.controlCA.CertPEM())
}

// serveGRPC listens on addr and serves the services register adds, until
// the returned stop is called.
func serveGRPC(addr string, register func(*grpc.Server), log *slog.Logger, opts ...grpc.ServerOption) (string, func(), error) {
	lis, err := listen(addr)
	if err != nil {
		return "", nil, err
	}
	g := newGRPCServer(opts...)
	register(g)
	go func() {
		if err := g.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			log.Error("grpc server stopped", "addr", lis.Addr().String(), "error", err)
		}
	}()
	if path, ok := strings.CutPrefix(addr, unixPrefix); ok {
		return unixPrefix + path, g.Stop, nil
	}
	return lis.Addr().String(), g.Stop, nil
}

// unixPrefix marks an address as a Unix domain socket path
// ("unix:/run/egressgate/extproc.sock"), as gRPC's own dialer spells it.
const unixPrefix = xds.UnixPrefix

// listen opens a TCP address, or a Unix socket for a "unix:" address. A
// socket is left by a process that died is removed first; the socket is
// made 0600, so only this user (Envoy runs as it) can connect.
func listen(addr string) (net.Listener, error) {
	path, ok := strings.CutPrefix(addr, unixPrefix)
	if !ok {
		return net.Listen("tcp", addr)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("stale socket %s: %w", path, err)
	}
	lis, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		lis.Close()
		return nil, err
	}
	return lis, nil
}
