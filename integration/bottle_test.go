package integration

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/internal/testenv"
)

// startTimeout is how long egressgate may take to print "ready": Envoy
// start-up plus the first xDS exchange, on a loaded 2-core machine.
const startTimeout = 60 * time.Second

type bottleOptions struct {
	manifest       string // manifest text
	manifestPath   string // write the manifest here (to edit it later); default a temp file
	codexHome      string
	stateDir       string   // reuse to test restarts; default a fresh temp dir
	extProcAddress string   // point Envoy at this ext_proc instead of the built-in one
	env            []string // extra KEY=VALUE for egressgate's environment
	args           []string // extra flags for serve
}

// egress is what an agent needs to use a running egress: the proxy address
// and the state dir holding the bottle CA.
type egress struct {
	proxy    string // the agent's HTTPS_PROXY host:port
	stateDir string
}

// bottle is a running `egressgate serve` with its Envoy.
type bottle struct {
	egress
	t        testing.TB
	env      []string
	admin    string // egressgate's admin address, from the ready line
	manifest string // the manifest's path
	cmd      *exec.Cmd
	stdout   testenv.Buffer
	stderr   testenv.Buffer
	exited   chan struct{}
	exitErr  error
	readyCh  chan struct{}
}

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func writeManifest(t testing.TB, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bottle.md")
	replaceFile(t, path, text)
	return path
}

// replaceFile writes path the way editors and Codex do: a new file renamed
// over the old one, so a reader never sees half a file.
func replaceFile(t testing.TB, path, text string) {
	t.Helper()
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(text), 0o600))
	require.NoError(t, os.Rename(tmp, path))
}

// readyField returns the value after "NAME " in the ready line, e.g. the
// admin address in "…, admin 127.0.0.1:41234, …".
func readyField(stdout, name string) string {
	for _, line := range strings.Split(stdout, "\n") {
		if !strings.Contains(line, "ready") {
			continue
		}
		for _, part := range strings.Split(line, ", ") {
			if v, ok := strings.CutPrefix(part, name+" "); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return ""
}

// launch starts `egressgate args...` with Envoy available and returns the
// process; it does not wait for anything.
func launch(t testing.TB, b *bottle, args ...string) {
	t.Helper()
	b.cmd = exec.Command(egressgateBin, args...)
	b.cmd.Env = append(append(os.Environ(), "ENVOY_BIN="+testenv.EnvoyBinary(t)), b.env...)
	stdout, err := b.cmd.StdoutPipe()
	require.NoError(t, err)
	b.cmd.Stderr = &b.stderr
	require.NoError(t, b.cmd.Start())
	b.exited = make(chan struct{})
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		once := sync.Once{}
		for sc.Scan() {
			_, _ = b.stdout.Write(append(sc.Bytes(), '\n'))
			if strings.Contains(sc.Text(), "ready") {
				once.Do(func() { close(ready) })
			}
		}
		b.exitErr = b.cmd.Wait()
		close(b.exited)
	}()
	b.readyCh = ready
}

// portAttempts is how often a start is tried when a port chosen by
// freePort was taken by someone else before egressgate or Envoy bound it.
const portAttempts = 3

func startBottle(t testing.TB, o bottleOptions) *bottle {
	t.Helper()
	if o.stateDir == "" {
		o.stateDir = t.TempDir()
	}
	if o.manifestPath == "" {
		o.manifestPath = filepath.Join(t.TempDir(), "bottle.yaml")
	}
	replaceFile(t, o.manifestPath, o.manifest)
	for attempt := 1; ; attempt++ {
		b := &bottle{t: t, egress: egress{proxy: freePort(t), stateDir: o.stateDir}, env: o.env, manifest: o.manifestPath}
		err := b.tryRun(serveArgs(b, o)...)
		if err == nil {
			return b
		}
		if !portClash(b) || attempt == portAttempts {
			b.dumpLogs()
			t.Fatal(err)
		}
		t.Logf("attempt %d: %v; retrying with other ports", attempt, err)
	}
}

// portClash reports whether a start failed because a port was taken.
func portClash(b *bottle) bool {
	return strings.Contains(b.stderr.String(), "ddress already in use")
}

func serveArgs(b *bottle, o bottleOptions) []string {
	args := []string{"serve",
		"--manifest", b.manifest,
		"--state-dir", b.stateDir,
		"--listen", "127.0.0.1:0",
		"--admin", "127.0.0.1:0",
		"--proxy", b.proxy,
		"--log-level", "debug",
	}
	if o.codexHome != "" {
		args = append(args, "--codex-home", o.codexHome)
	}
	if o.extProcAddress != "" {
		args = append(args, "--extproc-address", o.extProcAddress)
	}
	return append(args, o.args...)
}

// startProcess runs `egressgate args...` until it prints "ready"; it is
// stopped with SIGTERM when the test ends.
func startProcess(t *testing.T, stateDir string, args ...string) *bottle {
	t.Helper()
	b := &bottle{t: t, egress: egress{stateDir: stateDir}}
	b.run(args...)
	return b
}

func (b *bottle) run(args ...string) {
	b.t.Helper()
	if err := b.tryRun(args...); err != nil {
		b.dumpLogs()
		b.t.Fatal(err)
	}
}

// tryRun starts `egressgate args...` and waits for its ready line. The
// process is stopped when the test ends, and its logs dumped if it failed.
func (b *bottle) tryRun(args ...string) error {
	t := b.t
	t.Helper()
	launch(t, b, args...)
	t.Cleanup(func() {
		b.stop()
		if t.Failed() {
			b.dumpLogs()
		}
	})
	select {
	case <-b.readyCh:
		b.admin = readyField(b.stdout.String(), "admin")
		return nil
	case <-b.exited:
		return fmt.Errorf("egressgate %s exited before ready: %v", args[0], b.exitErr)
	case <-time.After(startTimeout):
		return fmt.Errorf("egressgate %s not ready after %s", args[0], startTimeout)
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (b *bottle) stop() {
	select {
	case <-b.exited:
		return
	default:
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.exited:
	case <-time.After(20 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.exited
		b.t.Errorf("egressgate did not stop within 20s of SIGTERM")
	}
}

// envoyLog is the path of the bottle's Envoy log (the manifests here all
// name their bottle "itest").
func (b *bottle) envoyLog() string { return filepath.Join(b.stateDir, "itest", "envoy.log") }

func (b *bottle) dumpLogs() {
	b.t.Logf("egressgate stdout:\n%s", b.stdout.String())
	b.t.Logf("egressgate stderr:\n%s", b.stderr.String())
	logs, _ := filepath.Glob(filepath.Join(b.stateDir, "*", "envoy.log"))
	for _, l := range logs {
		if data, err := os.ReadFile(l); err == nil {
			b.t.Logf("%s (last 8 KiB):\n%s", l, tail(data, 8<<10))
		}
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// roots is the agent's trust: the bottle CA alone.
func (b egress) roots(t testing.TB) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(b.stateDir, "ca.pem"))
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(pem), "ca.pem holds no certificate")
	return roots
}

// agent is an HTTP client configured the way a bottle's agent is: all
// traffic through HTTPS_PROXY, trusting only the bottle CA in STATE_DIR/ca.pem.
func (b egress) agent(t testing.TB, http2 bool) *http.Client {
	t.Helper()
	roots := b.roots(t)
	proxyURL, err := url.Parse("http://" + b.proxy)
	require.NoError(t, err)
	tr := &http.Transport{
		Proxy:             http.ProxyURL(proxyURL),
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		ForceAttemptHTTP2: http2,
	}
	if !http2 {
		// A non-nil empty map is how net/http is told not to speak h2.
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func readAll(t testing.TB, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	require.NoError(t, err)
	return string(b)
}
