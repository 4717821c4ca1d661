package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/internal/testenv"
)

// quickStartLimit covers building both binaries under a cold cache.
const quickStartLimit = 4 * time.Minute

// TestQuickStartOffline runs what `make run` runs (scripts/run.sh) on a
// machine with no internet: the README's first success must be a request
// leaving with the host's token and without the agent's, a refused path
// and host, and the audit trail of all three; `egressgate status` works
// as written; Ctrl-C ends it with exit 0 (make then reports no error).
func TestQuickStartOffline(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("curl is not installed; scripts/setup.sh installs it")
		}
		t.Skip("curl is not installed; the quick start's agent uses it")
	}
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	state, agentDir := t.TempDir(), t.TempDir()
	admin := freePort(t)
	cmd := exec.Command("scripts/run.sh", "--listen", "127.0.0.1:0")
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		"STATE_DIR="+state, "AGENT_DIR="+agentDir, "PROXY="+freePort(t), "ADMIN="+admin,
		"ENVOY_BIN="+testenv.EnvoyBinary(t))
	// Its own process group, as a terminal gives it: Ctrl-C reaches all.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out testenv.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	done := make(chan struct{})
	go func() { exited <- cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if t.Failed() {
			t.Logf("scripts/run.sh output:\n%s", out.String())
		}
	})

	eventually(t, quickStartLimit, "the quick start serving after its demo", func() bool {
		select {
		case <-done:
			require.FailNow(t, "scripts/run.sh stopped before serving")
		default:
		}
		return strings.Contains(out.String(), "run: serving")
	})
	text := out.String()
	var received []string // what the demo upstream echoed
	for line := range strings.Lines(text) {
		if strings.HasPrefix(line, "demo: |   ") {
			received = append(received, strings.TrimSpace(strings.TrimPrefix(line, "demo: |")))
		}
	}
	assert.Contains(t, received, "Authorization: Bearer demo-host-token", "the host's token went out")
	assert.NotContains(t, strings.Join(received, "\n"), "agent-own-token", "the agent's credential did not")
	assert.Contains(t, text, "GET /admin on demo.egressgate.test refused")
	assert.Contains(t, text, "CONNECT tunnel failed, response 403")
	for _, decision := range []string{"forwarded_with_credential", "not_allowed", "host_not_allowed"} {
		assert.Contains(t, text, decision, "the audit table shows it")
	}

	status := exec.Command(filepath.Join(root, "bin", "egressgate"), "status", "--admin", admin)
	got, err := status.CombinedOutput()
	assert.NoError(t, err, "bin/egressgate status, as the README has it:\n%s", got)
	assert.Contains(t, string(got), "quickstart")

	require.NoError(t, syscall.Kill(-cmd.Process.Pid, syscall.SIGINT))
	select {
	case err := <-exited:
		assert.NoError(t, err, "Ctrl-C ends make run with exit 0")
	case <-time.After(30 * time.Second):
		t.Fatal("scripts/run.sh still running 30 s after Ctrl-C")
	}
}
