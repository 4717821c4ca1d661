package serve

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// RunControl is `egressgate control`: the xDS server for several bottles,
// each isolated (its own snapshot, its own slots, its own token). Each
// bottle's Envoy and ext_proc sidecar run elsewhere; RunControl writes what
// they need into the state dir: STATE_DIR/<bottle>/envoy.yaml (bootstrap
// with the bottle's xDS token) and STATE_DIR/tokens/<bottle>.jwt.
func RunControl(ctx context.Context, o ControlOptions) error {
	o.setDefaults()
	var err error
	if o.EnvoyAdmin, err = resolveEnvoyAdmin(o.EnvoyAdmin, false); err != nil {
		return err
	}
	log := o.Logger
	manifests, err := expandManifests(o.Manifests)
	if err != nil {
		return err
	}
	cfg := planeConfig{mode: "control", proxyListen: o.ProxyListen, extProcAddr: o.ExtProcAddress, systemCAFile: o.SystemCAFile, codexHome: o.CodexHome}
	cp, err := startControlPlane(ctx, &o.Common, cfg, manifests)
	if err != nil {
		return err
	}
	defer cp.stop()
	if err := cp.loadAll(ctx); err != nil {
		return err
	}
	xdsAddr := o.XDSAddress
	if xdsAddr == "" {
		xdsAddr = cp.xdsAddr
	}
	var names []string
	for _, p := range cp.policies() {
		token, _, err := cp.auth.EnsureToken(o.StateDir, p.Name, time.Now())
		if err != nil {
			return err
		}
		if _, err := writeBootstrap(o.BootstrapDir, p.Name, xdsAddr, o.EnvoyAdmin, token); err != nil {
			return fmt.Errorf("bootstrap for %s: %w", p.Name, err)
		}
		logSlots(log, p)
		names = append(names, p.Name)
	}
	adminAddr, err := cp.obs.serveAdmin(ctx, o.Admin, cp.status, log)
	if err != nil {
		return fmt.Errorf("admin endpoint: %w", err)
	}
	if err := cp.follow(ctx, o.Reload); err != nil {
		return err
	}
	go cp.warnExpiry(ctx)
	cp.obs.ready.Store(true)
	fmt.Fprintf(o.Stdout, "egressgate control ready: bottles %s, xds %s, admin %s\n",
		strings.Join(names, ","), cp.xdsAddr, orNone(adminAddr))
	<-ctx.Done()
	log.Info("stopping", "reason", context.Cause(ctx))
	return nil
}

// expandManifests turns each argument into manifest paths: a file is
// itself, a directory stands for the *.md, *.yaml and *.yml files in it.
func expandManifests(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		info, err := os.Stat(a)
		if err != nil {
			return nil, fmt.Errorf("manifest %s: %w", a, err)
		}
		if !info.IsDir() {
			out = append(out, a)
			continue
		}
		entries, err := os.ReadDir(a)
		if err != nil {
			return nil, err
		}
		var found []string
		for _, e := range entries {
			if ext := filepath.Ext(e.Name()); !e.IsDir() && (ext == ".md" || ext == ".yaml" || ext == ".yml") {
				found = append(found, filepath.Join(a, e.Name()))
			}
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("manifest directory %s holds no .md, .yaml or .yml file", a)
		}
		slices.Sort(found)
		out = append(out, found...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no manifest given")
	}
	return out, nil
}
