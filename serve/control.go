package serve

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/xdsauth"
)

// RunControl is `egressgate control`: the xDS server for several bottles,
// each isolated (its own snapshot, its own slots, its own tokens). Each
// bottle's Envoy and ext_proc sidecar run elsewhere and reach it over TLS
// (the control CA); RunControl writes what they need: the bootstrap with
// the Envoy's token (BOOTSTRAP_DIR/<bottle>/envoy.yaml) and the sidecar's
// token (STATE_DIR/tokens/<bottle>.jwt, copied to --sidecar-dir if given).
func RunControl(ctx context.Context, o ControlOptions) error {
	o.setDefaults()
	if os.Getenv("GOGC") == "" {
		// control is long-lived and mostly idle, holding every bottle's
		// configuration and two streams per bottle: memory is its cost,
		// CPU is not. With a thousand bottles, GOGC 100 sat at 284 MB
		// resident, 50 at 255 MB and 30 at 239–242 MB, for a few per cent
		// more CPU on start and reloads (docs/benchmarks.md). A memory
		// limit (GOMEMLIMIT=200MiB) got 221 MB but doubled a shared
		// rotation's time: the live heap is close to any fixed limit.
		debug.SetGCPercent(controlGCPercent)
	}
	var err error
	if o.EnvoyAdmin, err = resolveEnvoyAdmin(o.EnvoyAdmin, false); err != nil {
		return err
	}
	log := o.Logger
	manifests, err := scanManifests(o.Manifests)
	if err != nil {
		return err
	}
	cfg := planeConfig{mode: "control", proxyListen: o.ProxyListen, extProcAddr: o.ExtProcAddress, systemCAFile: o.SystemCAFile, codexHome: o.CodexHome}
	cp, err := startControlPlane(ctx, &o.Common, cfg, manifests)
	if err != nil {
		return err
	}
	defer cp.stop()
	xdsAddr := o.XDSAddress
	if xdsAddr == "" {
		xdsAddr = cp.xdsAddr
	}
	cp.manifestArgs = o.Manifests
	cp.tokenFiles = func(bottle string) []string {
		return []string{xdsauth.TokenPath(o.StateDir, bottle, xdsauth.RoleEnvoy), xdsauth.TokenPath(o.StateDir, bottle, xdsauth.RoleExtProc)}
	}
	files := &bottleFiles{o: o, xdsAddr: xdsAddr, cp: cp, written: map[string]writtenTokens{}}
	cp.firstServed = func(p *config.Policy) error {
		if _, err := files.sync(p.Name); err != nil {
			return err
		}
		logSlots(log, p)
		return nil
	}
	cp.afterReload = func() {
		for _, p := range cp.policies() {
			rotated, err := files.sync(p.Name)
			if err != nil {
				log.Error("cannot write what the bottle's Envoy and sidecar need", "bottle", p.Name, "error", err)
			}
			if rotated {
				log.Warn("bottle's tokens rotated: restart its Envoy with its rewritten bootstrap", "bottle", p.Name, "bootstrap", bootstrapPath(o.BootstrapDir, p.Name))
			}
		}
		if n := cp.auth.EndRevoked(); n > 0 {
			log.Info("ended xDS streams opened with revoked tokens", "streams", n)
		}
	}
	cp.withdrawn = func(bottle string) {
		if err := cp.auth.RemoveTokens(bottle); err != nil {
			log.Error("cannot remove a withdrawn bottle's tokens", "bottle", bottle, "error", err)
		}
		files.remove(bottle)
	}
	if err := cp.loadAll(ctx); err != nil {
		return err
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
	var names []string
	for _, p := range cp.policies() {
		names = append(names, p.Name)
	}
	fmt.Fprintf(o.Stdout, "egressgate control ready: bottles %s, xds %s, admin %s\n",
		orNone(strings.Join(names, ",")), cp.xdsAddr, orNone(adminAddr))
	<-ctx.Done()
	log.Info("stopping", "reason", context.Cause(ctx))
	return nil
}

// scanManifests turns each argument into manifest paths: a file is itself
// (even once it is gone, so that its bottle reports the error rather than
// vanishing), a directory stands for the *.md, *.yaml and *.yml files in
// it now. An empty directory is fine: control follows it.
func scanManifests(args []string) ([]string, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("no manifest given")
	}
	var out []string
	for _, a := range args {
		info, err := os.Stat(a)
		if errors.Is(err, fs.ErrNotExist) {
			// A file named on the command line stays a bottle while it is
			// gone: its reload reports the error and it keeps its last good
			// configuration, and the directories beside it are still
			// followed. (A directory that is gone has no bottles to keep.)
			out = append(out, a)
			continue
		}
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
			if ext := filepath.Ext(e.Name()); !e.IsDir() && !strings.HasPrefix(e.Name(), ".") && (ext == ".md" || ext == ".yaml" || ext == ".yml") {
				found = append(found, filepath.Join(a, e.Name()))
			}
		}
		slices.Sort(found)
		out = append(out, found...)
	}
	// A file named and also found in a named directory is one bottle.
	seen := map[string]bool{}
	return slices.DeleteFunc(out, func(path string) bool {
		abs, err := filepath.Abs(path)
		if err != nil {
			abs = path
		}
		dup := seen[abs]
		seen[abs] = true
		return dup
	}), nil
}

// manifestDirs are the directories among args, whose membership control
// follows.
func manifestDirs(args []string) []string {
	var dirs []string
	for _, a := range args {
		if info, err := os.Stat(a); err == nil && info.IsDir() {
			if abs, err := filepath.Abs(a); err == nil {
				dirs = append(dirs, abs)
			}
		}
	}
	return dirs
}

// controlGCPercent is control's GOGC unless the environment sets one.
const controlGCPercent = 30
