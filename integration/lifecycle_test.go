package integration

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/audit"
	"github.com/egressgate/egressgate/internal/testenv"
)

func TestExtProcUnreachableFailsClosed(t *testing.T) {
	pki := newUpstreamPKI(t, testHosts...)
	up := newUpstream(t, pki)
	login := newHostLogin(t, time.Now().Add(time.Hour))
	// Nothing listens here: Envoy's ext_proc calls are refused.
	dead := freePort(t)
	b := startBottle(t, bottleOptions{manifest: codexManifest(true, up, pki), codexHome: login.home, extProcAddress: dead})

	for _, url := range []string{"https://chatgpt.com/backend-api/codex/responses", "https://api.example.test/allowed/x"} {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", agentPlaceholder)
		resp, err := b.agent(t, true).Do(req)
		require.NoError(t, err)
		body := readAll(t, resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, url)
		assert.Contains(t, body, "the egress's credential service (ext_proc) is unavailable")
		assert.Contains(t, body, "was not sent; check egressgate on the host")
		assert.Equal(t, "false", resp.Header.Get("x-should-retry"))
	}
	assert.Empty(t, up.requests(), "with ext_proc down the upstream must receive nothing")
	for _, path := range []string{"/backend-api/codex/responses", "/allowed/x"} {
		r := recordFor(t, b.stateDir, "the fail-closed "+path, pathIs(path))
		assert.Equal(t, audit.FailedClosed, r.Decision, "%+v", r)
		assert.Equal(t, "ext_proc_error_gRPC_error_14", r.Reason)
	}
}

func TestForwardHostCredentialsOffInjectsNothing(t *testing.T) {
	pki := newUpstreamPKI(t, testHosts...)
	up := newUpstream(t, pki)
	// auth.json is a directory: any attempt to read it would fail start-up,
	// so reaching "ready" proves egressgate never read it.
	home := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(home, "auth.json"), 0o700))
	b := startBottle(t, bottleOptions{manifest: codexManifest(false, up, pki), codexHome: home})

	req, err := http.NewRequest(http.MethodPost, "https://chatgpt.com/backend-api/codex/responses", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", agentPlaceholder)
	resp, err := b.agent(t, true).Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	got := lastRequestTo(t, up, "/backend-api/codex/responses")
	assert.Empty(t, got.Header.Values("Authorization"), "no token may be injected when host credentials are not forwarded")
}

func TestBadHostLoginRefusesToStart(t *testing.T) {
	pki := newUpstreamPKI(t, testHosts...)
	up := newUpstream(t, pki)
	manifest := writeManifest(t, codexManifest(true, up, pki))
	cases := map[string]func(t *testing.T, home string){
		"expired": func(t *testing.T, home string) {
			l := newHostLogin(t, time.Now().Add(-time.Hour))
			copyFile(t, filepath.Join(l.home, "auth.json"), filepath.Join(home, "auth.json"))
		},
		"api key mode": func(t *testing.T, home string) {
			writeAuthJSON(t, home, map[string]any{"auth_mode": "apikey", "OPENAI_API_KEY": "sk-test-not-real"})
		},
		"missing": func(t *testing.T, home string) {},
		"malformed": func(t *testing.T, home string) {
			require.NoError(t, os.WriteFile(filepath.Join(home, "auth.json"), []byte("{not json"), 0o600))
		},
	}
	for name, setup := range cases {
		t.Run(name, func(t *testing.T) {
			home := t.TempDir()
			setup(t, home)
			for _, args := range [][]string{
				{"validate", "--manifest", manifest, "--codex-home", home},
				{"serve", "--manifest", manifest, "--codex-home", home, "--state-dir", t.TempDir(),
					"--listen", "127.0.0.1:0", "--proxy", freePort(t)},
			} {
				code, stdout, stderr := runEgressgate(t, args...)
				assert.NotZero(t, code, "%s must fail", args[0])
				lines := strings.Split(strings.TrimSpace(stderr), "\n")
				assert.Len(t, lines, 1, "%s: one line naming the problem:\n%s", args[0], stderr)
				assert.Contains(t, stderr, "auth.json")
				assert.Contains(t, stderr, "codex login --device-auth")
				assert.NotContains(t, stdout+stderr, "sk-test-not-real")
				assert.NotContains(t, stdout, "ready")
			}
		})
	}
}

func TestRestartKeepsCAAndBootstrapValidates(t *testing.T) {
	pki := newUpstreamPKI(t, testHosts...)
	up := newUpstream(t, pki)
	login := newHostLogin(t, time.Now().Add(time.Hour))
	state := t.TempDir()
	opts := bottleOptions{manifest: codexManifest(true, up, pki), codexHome: login.home, stateDir: state}

	first := startBottle(t, opts)
	caBefore := readFile(t, filepath.Join(state, "ca.pem"))
	keyInfo, err := os.Stat(filepath.Join(state, "ca-key.pem"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), keyInfo.Mode().Perm(), "CA key mode")
	// Envoy's admin is a Unix socket beside its bootstrap that only its
	// user may open, and readiness (startBottle waited for it) goes through
	// that socket.
	adminSocket := filepath.Join(state, "itest", "envoy-admin.sock")
	assert.Equal(t, adminSocket, strings.TrimSpace(readFile(t, filepath.Join(state, "itest", "envoy-admin.txt"))))
	sockInfo, err := os.Stat(adminSocket)
	require.NoError(t, err)
	assert.Equal(t, os.ModeSocket, sockInfo.Mode().Type())
	assert.Equal(t, os.FileMode(0o600), sockInfo.Mode().Perm(), "envoy admin socket mode")
	code, body, err := envoyAdmin(t, adminSocket, "/ready")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "LIVE", strings.TrimSpace(body))
	first.stop()
	require.NoError(t, first.exitErr, "SIGTERM must stop egressgate cleanly")
	_, _, err = envoyAdmin(t, adminSocket, "/ready")
	assert.Error(t, err, "envoy must be gone after egressgate stops")

	second := startBottle(t, opts)
	assert.Equal(t, caBefore, readFile(t, filepath.Join(state, "ca.pem")), "the CA must survive a restart")
	// The agent trusting the first run's ca.pem still reaches the upstream.
	resp, err := second.agent(t, true).Get("https://api.example.test/allowed/after-restart")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, testenv.EnvoyBinary(t), "--mode", "validate",
		"-c", filepath.Join(state, "itest", "envoy.yaml")).CombinedOutput()
	require.NoError(t, err, "envoy --mode validate:\n%s", out)
}

func runEgressgate(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return runEgressgateEnv(t, nil, args...)
}

// runEgressgateEnv is runEgressgate with extra KEY=VALUE environment.
func runEgressgateEnv(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, egressgateBin, args...)
	cmd.Env = append(append(os.Environ(), "ENVOY_BIN="+testenv.EnvoyBinary(t)), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), stdout.String(), stderr.String()
	default:
		t.Fatalf("running egressgate: %v", err)
		return 0, "", ""
	}
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	require.NoError(t, os.WriteFile(to, []byte(readFile(t, from)), 0o600))
}

// TestStateDirHoldsOneEgressgate: a second serve on a state dir in use
// says so and exits, and the first keeps serving with its own bootstrap.
func TestStateDirHoldsOneEgressgate(t *testing.T) {
	pki := newUpstreamPKI(t, "api.example.test")
	up := newUpstream(t, pki)
	b := startBottle(t, bottleOptions{manifest: liveManifest(up, pki, "", "api.example.test")})
	bootstrap := filepath.Join(b.stateDir, "itest", "envoy.yaml")
	before := readFile(t, bootstrap)

	code, _, stderr := runEgressgate(t, "serve", "--manifest", b.manifest, "--state-dir", b.stateDir,
		"--listen", "127.0.0.1:0", "--admin", "", "--proxy", freePort(t))
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "is in use by another egressgate")
	assert.Equal(t, before, readFile(t, bootstrap), "the first one's bootstrap was left alone")
	assert.Equal(t, http.StatusOK, get(t, b.agent(t, true), "https://api.example.test/still-served"))
}

// TestExternalEnvoyStopsCleanly: serve --external-envoy stopped (SIGTERM)
// while it waits for an Envoy that never came exits 0.
func TestExternalEnvoyStopsCleanly(t *testing.T) {
	manifest := filepath.Join(t.TempDir(), "bottle.yaml")
	replaceFile(t, manifest, "name: itest\negress:\n  routes:\n    - host: api.example.test\n")
	state := t.TempDir()
	cmd := exec.Command(egressgateBin, "serve", "--manifest", manifest, "--state-dir", state, "--external-envoy",
		"--listen", "127.0.0.1:0", "--admin", "", "--proxy", freePort(t))
	var stderr testenv.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("egressgate stderr:\n%s", stderr.String())
		}
	})
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	eventually(t, startTimeout, "egressgate to wait for its envoy", func() bool {
		select {
		case err := <-exited:
			t.Fatalf("egressgate exited early: %v", err)
		default:
		}
		return strings.Contains(stderr.String(), "waiting for an external envoy")
	})
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	assert.NoError(t, <-exited, "exit status after SIGTERM")
}

// TestServeWithSidecar: serve with --extproc-address and an `egressgate
// extproc` sidecar, as a bottle host without a separate control plane
// would run them. serve's xDS then speaks TLS (the sidecar subscribes to
// credential values over it), and so does the sidecar's ext_proc; the
// sidecar finds the control CA beside its token file.
func TestServeWithSidecar(t *testing.T) {
	pki := newUpstreamPKI(t, testHosts...)
	up := newUpstream(t, pki)
	login := newHostLogin(t, time.Now().Add(time.Hour))
	sidecarAddr := freePort(t)
	b := startBottle(t, bottleOptions{manifest: codexManifest(true, up, pki), codexHome: login.home, extProcAddress: sidecarAddr})
	xdsAddr := readyField(b.stdout.String(), "xds")
	assert.Contains(t, readFile(t, filepath.Join(b.stateDir, "itest", "envoy.yaml")), "envoy.transport_sockets.tls", "serve's own Envoy verifies the TLS xDS too")
	startProcess(t, b.stateDir, "extproc", "--node", "itest", "--xds", xdsAddr,
		"--token-file", filepath.Join(b.stateDir, "tokens", "itest.jwt"), "--listen", sidecarAddr, "--admin", "127.0.0.1:0")

	eventually(t, propagation, "a credentialed request through the sidecar", func() bool {
		req, err := http.NewRequest(http.MethodGet, "https://chatgpt.com/backend-api/codex/sidecar", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", agentPlaceholder)
		resp, err := b.agent(t, true).Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	assert.Equal(t, "Bearer "+login.accessToken, lastRequestTo(t, up, "/backend-api/codex/sidecar").Header.Get("Authorization"))
}
