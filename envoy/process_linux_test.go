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
	_, err = p.AdminSocket(ctx)
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

// Envoy's admin must not listen on TCP at all: with no xDS server, an Envoy
// has no listener but its admin, so any TCP listening socket it holds would
// be the admin's.
func TestAdminHasNoTCPListener(t *testing.T) {
	p := startEnvoy(t, t.Context(), testOptions(t, closedPort(t)))
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, err := p.AdminSocket(ctx)
	require.NoError(t, err)
	require.Empty(t, tcpListeners(t, p.PID()), "envoy listens on TCP")
}

// tcpListeners returns the local addresses (hex, as /proc shows them) of
// the TCP sockets in LISTEN state that process pid holds.
func tcpListeners(t *testing.T, pid int) []string {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	require.NoError(t, err)
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	require.NotEmpty(t, inodes, "envoy holds no socket at all: the fd scan is broken")
	var listening []string
	for _, table := range []string{"tcp", "tcp6"} {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		require.NoError(t, err)
		for _, line := range strings.Split(string(data), "\n")[1:] {
			// sl local_address rem_address st ... inode is field 9.
			f := strings.Fields(line)
			const listen = "0A"
			if len(f) > 9 && f[3] == listen && inodes[f[9]] {
				listening = append(listening, f[1])
			}
		}
	}
	return listening
}
