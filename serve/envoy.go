package serve

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/egressgate/egressgate/envoy"
	"github.com/egressgate/egressgate/internal/securefile"
	"github.com/egressgate/egressgate/xds"
)

// writeBootstrap renders the bootstrap of node's Envoy into
// <bootDir>/<node>/envoy.yaml (so several bottles can share a directory),
// mode 0600 because it holds the bottle's xDS token.
func writeBootstrap(bootDir, node, xdsAddr, adminAddr, token string) (string, error) {
	dir := filepath.Join(bootDir, node)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	params, err := bootstrapParams(node, xdsAddr, adminAddr)
	if err != nil {
		return "", err
	}
	params.XDSToken = token
	boot, err := envoy.RenderBootstrap(params)
	if err != nil {
		return "", err
	}
	// WriteAtomic sets 0600 whatever an older file's mode was (os.WriteFile
	// would keep it), and Envoy never reads a half-written bootstrap.
	path := bootstrapPath(bootDir, node)
	return path, securefile.WriteAtomic(path, boot, 0o600)
}

// bootstrapPath is where writeBootstrap puts node's bootstrap.
func bootstrapPath(bootDir, node string) string {
	return filepath.Join(bootDir, node, "envoy.yaml")
}

// startEnvoy renders, validates and starts the bottle's Envoy.
func startEnvoy(ctx context.Context, o *Options, node, xdsAddr, token string) (*envoy.Process, error) {
	bin, err := envoy.FindBinary(o.EnvoyBin)
	if err != nil {
		return nil, err
	}
	bootPath, err := writeBootstrap(o.BootstrapDir, node, xdsAddr, o.EnvoyAdmin, token)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(bootPath)
	if err := envoy.Validate(ctx, bin, bootPath); err != nil {
		return nil, fmt.Errorf("envoy bootstrap %s: %w", bootPath, err)
	}
	return envoy.Start(ctx, envoy.Options{
		Bin:              bin,
		ConfigPath:       bootPath,
		LogPath:          filepath.Join(dir, "envoy.log"),
		AdminAddressPath: filepath.Join(dir, "envoy-admin.txt"),
	})
}

func bootstrapParams(node, xdsAddr, adminAddr string) (envoy.BootstrapParams, error) {
	xh, xp, err := hostPort(xdsAddr)
	if err != nil {
		return envoy.BootstrapParams{}, fmt.Errorf("xds address: %w", err)
	}
	ah, ap, err := hostPort(adminAddr)
	if err != nil {
		return envoy.BootstrapParams{}, fmt.Errorf("envoy admin address: %w", err)
	}
	return envoy.BootstrapParams{NodeID: node, Cluster: "egressgate", XDSHost: xh, XDSPort: xp, AdminHost: ah, AdminPort: ap}, nil
}

func hostPort(addr string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	return h, port, err
}

// waitReady returns once Envoy has acknowledged the snapshot and reports
// itself live, or fails with Envoy's reason (a NACK, an early exit with the
// tail of its log, or the timeout).
func waitReady(ctx context.Context, x *xds.Server, node string, proc *envoy.Process) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	go func() {
		select {
		case <-proc.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	err := x.WaitAcked(ctx, node)
	if err == nil {
		err = proc.WaitReady(ctx)
	}
	if err != nil {
		select {
		case <-proc.Done():
			return fmt.Errorf("envoy exited before it was ready: %v\n%s", proc.Err(), proc.LogTail(20))
		default:
			return err
		}
	}
	return nil
}

func stopEnvoy(proc *envoy.Process, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := proc.Stop(ctx); err != nil {
		log.Warn("stopping envoy", "error", err)
	}
}
