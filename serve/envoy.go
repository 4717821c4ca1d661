package serve

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/egressgate/egressgate/envoy"
	"github.com/egressgate/egressgate/internal/securefile"
)

// adminSocketName is Envoy's admin socket beside its bootstrap, unless
// --envoy-admin names another path.
const adminSocketName = "envoy-admin.sock"

// writeBootstrap renders the bootstrap of node's Envoy into
// <bootDir>/<node>/envoy.yaml (so several bottles can share a directory),
// mode 0600 because it holds the bottle's xDS token. adminSocket "" puts
// Envoy's admin socket beside it.
func writeBootstrap(bootDir, node, xdsAddr, adminSocket, token, xdsCA string) (string, error) {
	dir := filepath.Join(bootDir, node)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if adminSocket == "" {
		adminSocket = filepath.Join(dir, adminSocketName)
	}
	params, err := bootstrapParams(node, xdsAddr, adminSocket)
	if err != nil {
		return "", err
	}
	params.XDSToken, params.XDSTrustedCA = token, xdsCA
	boot, err := envoy.RenderBootstrap(params)
	if err != nil {
		return "", err
	}
	// WriteAtomic sets 0600 whatever an older file's mode was (os.WriteFile
	// would keep it), and Envoy never reads a half-written bootstrap.
	path := bootstrapPath(bootDir, node)
	return path, securefile.WriteIfChanged(path, boot, 0o600)
}

// bootstrapPath is where writeBootstrap puts node's bootstrap.
func bootstrapPath(bootDir, node string) string {
	return filepath.Join(bootDir, node, "envoy.yaml")
}

// startEnvoy renders, validates and starts the bottle's Envoy.
func startEnvoy(ctx context.Context, o *Options, node, xdsAddr, token, xdsCA string) (*envoy.Process, error) {
	bin, err := envoy.FindBinary(o.EnvoyBin)
	if err != nil {
		return nil, err
	}
	bootPath, err := writeBootstrap(o.BootstrapDir, node, xdsAddr, o.EnvoyAdmin, token, xdsCA)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(bootPath)
	// No `envoy --mode validate` first: it is a whole Envoy start-up (about
	// 90 ms, two thirds of serve's cold start), and a bootstrap Envoy
	// refuses makes it exit at once; waitReady then validates to say why.
	return envoy.Start(ctx, envoy.Options{
		Bin:              bin,
		ConfigPath:       bootPath,
		LogPath:          filepath.Join(dir, "envoy.log"),
		AdminAddressPath: filepath.Join(dir, "envoy-admin.txt"),
	})
}

func bootstrapParams(node, xdsAddr, adminSocket string) (envoy.BootstrapParams, error) {
	xh, xp, err := hostPort(xdsAddr)
	if err != nil {
		return envoy.BootstrapParams{}, fmt.Errorf("xds address: %w", err)
	}
	return envoy.BootstrapParams{NodeID: node, Cluster: "egressgate", XDSHost: xh, XDSPort: xp, AdminSocket: adminSocket}, nil
}

// resolveEnvoyAdmin checks an --envoy-admin and makes it absolute where
// that is safe. A host:port from before the admin moved to a Unix socket
// gets a reason of its own, rather than becoming a socket file named
// "127.0.0.1:9901". An Envoy of our own (ownEnvoy) shares our working
// directory, so a relative path means the same to both; an external
// Envoy's does not, and a relative path is refused.
func resolveEnvoyAdmin(path string, ownEnvoy bool) (string, error) {
	if path == "" {
		return "", nil
	}
	if _, _, err := hostPort(path); err == nil && !strings.Contains(path, "/") {
		return "", fmt.Errorf("--envoy-admin %s: Envoy's admin no longer listens on TCP; give a Unix socket path, or leave it out for STATE_DIR/BOTTLE/%s", path, adminSocketName)
	}
	if ownEnvoy {
		abs, err := filepath.Abs(path)
		if err != nil {
			return "", fmt.Errorf("--envoy-admin: %w", err)
		}
		path = abs
	}
	if err := envoy.CheckAdminSocket(path); err != nil {
		return "", fmt.Errorf("--envoy-admin: %w", err)
	}
	return path, nil
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
func waitReady(ctx context.Context, x xdsServer, node string, proc *envoy.Process) error {
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
			if verr := envoy.Validate(context.WithoutCancel(ctx), proc.Bin(), proc.ConfigPath()); verr != nil {
				return fmt.Errorf("envoy bootstrap %s: %w", proc.ConfigPath(), verr)
			}
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
