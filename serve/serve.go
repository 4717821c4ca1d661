package serve

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/egressgate/egressgate/envoy"
	"github.com/egressgate/egressgate/extproc"
	"github.com/egressgate/egressgate/xdsauth"
)

// readyTimeout bounds start-up: Envoy starting, fetching and acknowledging
// its first configuration takes a second or two; a minute means it never
// will, and the user is better served by an error than by waiting.
const readyTimeout = time.Minute

// Run is `egressgate serve`: one bottle, its xDS and ext_proc servers and
// its Envoy. It returns nil after a clean stop (ctx done) or an error whose
// first line says what failed.
func Run(ctx context.Context, o Options) error {
	o.setDefaults()
	var err error
	if o.EnvoyAdmin, err = resolveEnvoyAdmin(o.EnvoyAdmin, !o.ExternalEnvoy); err != nil {
		return err
	}
	log := o.Logger
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	cfg := planeConfig{mode: "serve", proxyListen: o.ProxyListen, extProcAddr: o.ExtProcAddress, systemCAFile: o.SystemCAFile, codexHome: o.CodexHome}
	cp, err := startControlPlane(ctx, &o.Common, cfg, []string{o.Manifest})
	if err != nil {
		return err
	}
	defer cp.stop()
	if cp.cfg.extProcAddr == "" {
		// The built-in ext_proc server; its address goes into the
		// translation, so it starts before the first compile.
		ep := extproc.New(extproc.Options{
			Logger:  log.With("component", "extproc"),
			Observe: cp.metrics.ExtProcDecision,
			Latency: cp.metrics.ExtProcDecided,
			OnRejected: func(r extproc.Rejection) {
				for _, pol := range cp.policies() {
					cp.metrics.CredentialRejected(pol.Name, r.Slot, r.Host)
				}
				cp.recoverLogin(r.Slot)
			},
		})
		cp.rejections = func(string) map[string]extproc.Rejection { return ep.Rejections() }
		// Envoy and this server live and die together: a key of this
		// process's own is enough.
		key := rand.Text()
		addr, stop, err := serveGRPC(o.ExtProcListen, ep.Register, log, extProcServerOptions(func() string { return key })...)
		if err != nil {
			return fmt.Errorf("ext_proc server: %w", err)
		}
		defer stop()
		cp.cfg.extProcAddr = addr
		if o.ExtProcAdvertise != "" {
			cp.cfg.extProcAddr = o.ExtProcAdvertise
		}
		cp.cfg.extProcKey = func(string) (string, error) { return key, nil }
		cp.localExtProc = localExtProc(ep)
	}
	if err := cp.loadAll(ctx); err != nil {
		return err
	}
	node := cp.policies()[0].Name
	logSlots(log, cp.policies()[0])

	adminAddr, err := cp.obs.serveAdmin(ctx, o.Admin, cp.status, log)
	if err != nil {
		return fmt.Errorf("admin endpoint: %w", err)
	}
	proc, err := cp.runEnvoy(ctx, &o, node)
	if err != nil {
		if ctx.Err() != nil {
			// Stopped (SIGTERM) while waiting for Envoy, an external one
			// that never came: a clean stop, not a failure.
			log.Info("stopping before envoy was ready", "reason", context.Cause(ctx))
			return nil
		}
		return err
	}
	var envoyDone <-chan struct{}
	if proc != nil {
		// Deferred after cancel, so it runs first: Envoy is stopped, and
		// waited for, before Run returns.
		defer stopEnvoy(proc, log)
		envoyDone = proc.Done()
	}
	if err := cp.follow(ctx, o.Reload); err != nil {
		return err
	}
	go cp.warnExpiry(ctx)
	cp.obs.ready.Store(true)
	fmt.Fprintf(o.Stdout, "egressgate ready: bottle %s, proxy %s, xds %s, admin %s, config %s\n",
		node, o.ProxyListen, cp.xdsAddr, orNone(adminAddr), cp.status().Bottles[0].ConfigVersion)

	select {
	case <-ctx.Done():
		log.Info("stopping", "reason", context.Cause(ctx))
		return nil
	case <-envoyDone:
		return errors.New("envoy exited unexpectedly; see its log in the state dir")
	}
}

// runEnvoy starts the bottle's Envoy with its xDS token, and waits until it
// has acknowledged the configuration. For an external Envoy it writes the
// bootstrap, waits the same way, and returns no process.
func (cp *controlPlane) runEnvoy(ctx context.Context, o *Options, node string) (*envoy.Process, error) {
	token, _, err := cp.auth.EnsureToken(node, xdsauth.RoleEnvoy, time.Now())
	if err != nil {
		return nil, err
	}
	if o.ExternalEnvoy {
		xdsAddr := o.XDSAddress
		if xdsAddr == "" {
			xdsAddr = cp.xdsAddr
		}
		path, err := writeBootstrap(o.BootstrapDir, node, xdsAddr, o.EnvoyAdmin, token, cp.xdsCA())
		if err != nil {
			return nil, err
		}
		cp.log.Info("waiting for an external envoy", "node", node, "xds", cp.xdsAddr, "bootstrap", path)
		return nil, cp.xds.WaitAcked(ctx, node)
	}
	proc, err := startEnvoy(ctx, o, node, cp.xdsAddr, token, cp.xdsCA())
	if err != nil {
		return nil, err
	}
	if err := waitReady(ctx, cp.xds, node, proc); err != nil {
		stopEnvoy(proc, cp.log)
		return nil, err
	}
	return proc, nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
