package envoy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const helperEnv = "EGRESSGATE_ENVOY_HELPER_OPTIONS"

// TestHelperStartEnvoy is not a test on its own: TestEnvoyDiesWithItsParent
// runs the test binary as a child process that starts Envoy here, prints
// Envoy's pid, and stays alive until its stdin closes or it is killed.
func TestHelperStartEnvoy(t *testing.T) {
	raw := os.Getenv(helperEnv)
	if raw == "" {
		t.Skip("helper process for TestEnvoyDiesWithItsParent")
	}
	var o Options
	require.NoError(t, json.Unmarshal([]byte(raw), &o))
	p, err := Start(context.Background(), o)
	require.NoError(t, err)
	fmt.Printf("pid %d\n", p.PID())
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// An Envoy whose egressgate dies without stopping it (SIGKILL, crash) must
// not keep serving a config nobody updates: Pdeathsig kills it.
func TestEnvoyDiesWithItsParent(t *testing.T) {
	o := testOptions(t, closedPort(t))
	raw, err := json.Marshal(o)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	helper := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperStartEnvoy$")
	helper.Env = append(os.Environ(), helperEnv+"="+string(raw))
	stdin, err := helper.StdinPipe()
	require.NoError(t, err)
	defer stdin.Close()
	stdout, err := helper.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, helper.Start())

	var envoyPID int
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err, "helper output: %q", line)
	_, err = fmt.Sscanf(line, "pid %d", &envoyPID)
	require.NoError(t, err)
	// If the test fails, do not leave the orphan behind.
	t.Cleanup(func() { _ = syscall.Kill(envoyPID, syscall.SIGKILL) })

	// A Process that only knows the paths: enough to poll the address file
	// and so know Envoy is up, not merely forked.
	p := &Process{opts: o, done: make(chan struct{})}
	_, err = p.AdminAddress(ctx)
	require.NoError(t, err)

	require.NoError(t, helper.Process.Kill())
	_ = helper.Wait()
	require.Eventually(t, func() bool { return deadOrZombie(envoyPID) }, 10*time.Second, 20*time.Millisecond,
		"envoy pid %d outlived its parent", envoyPID)
}

// deadOrZombie reports whether pid has exited. An orphan is reaped by
// whatever PID 1 is, which in a container may never do it, so a zombie
// counts as dead.
func deadOrZombie(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// Field 3, after "(comm)", is the state.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(fields) > 0 && (fields[0] == "Z" || fields[0] == "X")
}
