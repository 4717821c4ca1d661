package envoy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/internal/testenv"
)

// closedPort returns a loopback port nothing listens on, so Envoy's ADS
// stream fails and retries without a server.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return port
}

// testOptions renders a bootstrap for an xDS server on xdsPort and returns
// Options to run it in a fresh directory.
func testOptions(t *testing.T, xdsPort int) Options {
	t.Helper()
	dir := t.TempDir()
	cfg, err := RenderBootstrap(BootstrapParams{NodeID: "test", XDSHost: "127.0.0.1", XDSPort: xdsPort,
		AdminSocket: filepath.Join(dir, "admin.sock")})
	require.NoError(t, err)
	path := filepath.Join(dir, "bootstrap.yaml")
	require.NoError(t, os.WriteFile(path, cfg, 0o600))
	return Options{
		Bin:              testenv.EnvoyBinary(t),
		ConfigPath:       path,
		LogPath:          filepath.Join(dir, "envoy.log"),
		AdminAddressPath: filepath.Join(dir, "admin-address"),
		Concurrency:      1, // two-core CI machines: keep worker threads down
	}
}

// startEnvoy starts Envoy, stops it at the end of the test, and attaches
// its log to a failing test.
func startEnvoy(t *testing.T, ctx context.Context, o Options) *Process {
	t.Helper()
	p, err := Start(ctx, o)
	require.NoError(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("envoy log tail:\n%s", p.LogTail(50))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = p.Stop(ctx)
	})
	return p
}

func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

func TestStartAdminSocketStop(t *testing.T) {
	o := testOptions(t, closedPort(t))
	p := startEnvoy(t, t.Context(), o)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	socket, err := p.AdminSocket(ctx)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(filepath.Dir(o.ConfigPath), "admin.sock"), socket)
	info, err := os.Stat(socket)
	require.NoError(t, err)
	require.Equal(t, os.ModeSocket, info.Mode().Type(), "admin listens on a Unix socket")
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "only Envoy's user may reach the admin")

	// The admin API answers; /ready is not LIVE, since no xDS server ever
	// delivers the initial clusters and listeners.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, AdminURL+"/ready", nil)
	require.NoError(t, err)
	resp, err := AdminClient(socket).Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)

	pid := p.PID()
	require.NoError(t, p.Stop(ctx))
	require.True(t, processGone(pid), "envoy pid %d still exists after Stop", pid)
	require.NoError(t, p.Err(), "envoy exits cleanly on SIGTERM")
	require.NoError(t, p.Stop(ctx), "Stop is idempotent")
	require.NotEmpty(t, p.LogTail(5))
}

func TestStartContextEndStopsEnvoy(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	p := startEnvoy(t, ctx, testOptions(t, closedPort(t)))
	waitCtx, waitCancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer waitCancel()
	_, err := p.AdminSocket(waitCtx)
	require.NoError(t, err)

	cancel()
	select {
	case <-p.Done():
	case <-waitCtx.Done():
		t.Fatal("envoy still running after its Start context ended")
	}
}

func TestWaitReadyFailsEarlyWhenEnvoyExits(t *testing.T) {
	o := testOptions(t, closedPort(t))
	require.NoError(t, os.WriteFile(o.ConfigPath, []byte("node: {id: x}\nbogus_field: 1\n"), 0o600))
	p := startEnvoy(t, t.Context(), o)

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	err := p.WaitReady(ctx)
	require.ErrorContains(t, err, "envoy exited before")
	require.ErrorContains(t, err, "bogus_field", "error carries the log tail")
	require.NoError(t, ctx.Err(), "must fail on exit, not on the deadline")
	require.Error(t, p.Err())
}

func TestAdminSocketHonoursDeadline(t *testing.T) {
	o := testOptions(t, closedPort(t))
	// A script that never writes the address file stands in for a hung Envoy.
	o.Bin = filepath.Join(t.TempDir(), "envoy")
	require.NoError(t, os.WriteFile(o.Bin, []byte("#!/bin/sh\necho starting\nexec sleep 60\n"), 0o755))
	p := startEnvoy(t, t.Context(), o)

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err := p.AdminSocket(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorContains(t, err, "starting")
}

func TestStopKillsWhenSIGTERMIgnored(t *testing.T) {
	o := testOptions(t, closedPort(t))
	// $5 is the --admin-address-path value: written once the trap is set.
	o.Bin = filepath.Join(t.TempDir(), "envoy")
	script := "#!/bin/sh\ntrap '' TERM\necho /nonexistent.sock > \"$5\"\nexec sleep 60\n"
	require.NoError(t, os.WriteFile(o.Bin, []byte(script), 0o755))
	p := startEnvoy(t, t.Context(), o)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err := p.AdminSocket(ctx)
	require.NoError(t, err)

	stopCtx, stopCancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer stopCancel()
	err = p.Stop(stopCtx)
	require.ErrorContains(t, err, "ignored SIGTERM, killed")
	require.True(t, processGone(p.PID()))
}

func TestStartRejectsMissingOptions(t *testing.T) {
	_, err := Start(t.Context(), Options{})
	for _, field := range []string{"Bin", "ConfigPath", "LogPath", "AdminAddressPath"} {
		require.ErrorContains(t, err, field)
	}
}

func TestLogTail(t *testing.T) {
	p := &Process{opts: Options{LogPath: writeFile(t, "envoy.log", []byte("a\nb\nc\nd\n"))}}
	require.Equal(t, "c\nd", p.LogTail(2))
	require.Equal(t, "a\nb\nc\nd", p.LogTail(10))

	long := strings.Repeat("x", maxTailBytes) + "\nlast\n"
	p = &Process{opts: Options{LogPath: writeFile(t, "big.log", []byte(long))}}
	require.Equal(t, "last", p.LogTail(1))
}
