package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/admin"
	"github.com/egressgate/egressgate/envoy"
	"github.com/egressgate/egressgate/internal/procstat"
)

// eventually polls cond until it holds or the deadline passes. It is how
// these tests wait: on a condition, never on a sleep.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond) // poll interval, not synchronisation
	}
}

// status fetches egressgate's /status.
func status(t testing.TB, adminAddr string) admin.Status {
	t.Helper()
	resp, err := http.Get("http://" + adminAddr + "/status")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var st admin.Status
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
	return st
}

// envoyPID is the PID of the bottle's Envoy child.
func (b *bottle) envoyPID(t testing.TB) int {
	t.Helper()
	kids := procstat.ChildPIDs(b.cmd.Process.Pid)
	require.Len(t, kids, 1, "egressgate should have exactly one child, its Envoy")
	return kids[0]
}

// fetchStatus is status for goroutines that must not fail the test.
func fetchStatus(adminAddr string) (admin.Status, error) {
	var st admin.Status
	resp, err := http.Get("http://" + adminAddr + "/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("status %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// envoyAdmin fetches path from the Envoy admin API on the Unix socket at
// socket, returning the status code and body. Its output holds keys
// (/config_dump): assert on it, never log it.
func envoyAdmin(t testing.TB, socket, path string) (int, string, error) {
	t.Helper()
	resp, err := envoy.AdminClient(socket).Get(envoy.AdminURL + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}
