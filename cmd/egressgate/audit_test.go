package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/audit"
)

func writeAuditLog(t *testing.T, records ...audit.Record) string {
	t.Helper()
	dir := t.TempDir()
	var lines []string
	for _, r := range records {
		b, err := json.Marshal(r)
		require.NoError(t, err)
		lines = append(lines, string(b))
	}
	lines = append(lines, `{"cut short`)
	require.NoError(t, os.WriteFile(filepath.Join(dir, audit.FileName), []byte(strings.Join(lines, "\n")+"\n"), 0o600))
	return dir
}

func TestAuditCommand(t *testing.T) {
	at := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	dir := writeAuditLog(t,
		audit.Record{Time: at, Bottle: "demo", Agent: "10.0.0.5:40000", Kind: audit.KindConnect, Method: "CONNECT", Host: "evil.test", Port: 443, Decision: audit.Refused, Reason: "host_not_allowed", Status: 403},
		audit.Record{Time: at.Add(time.Second), Bottle: "demo", Kind: audit.KindRequest, Method: "GET", Host: "chatgpt.com", Path: "/backend-api/x", Decision: audit.ForwardedWithCredential, Slot: "EGRESS_TOKEN_0", Status: 200},
		audit.Record{Time: at.Add(2 * time.Second), Bottle: "other", Kind: audit.KindRequest, Method: "POST", Host: "api.github.com", Path: "/admin", Decision: audit.Refused, Reason: "not_allowed", Status: 403},
	)
	code, stdout, stderr := runCLI(t, "audit", "--state-dir", dir)
	require.Equal(t, exitOK, code, stderr)
	assert.Equal(t, `TIME                  BOTTLE  AGENT           REQUEST                    STATUS  DECISION  REASON
2026-12-02T12:00:00Z  demo    10.0.0.5:40000  CONNECT evil.test:443      403     refused   host_not_allowed
2026-12-02T12:00:02Z  other   -               POST api.github.com/admin  403     refused   not_allowed
`, stdout)
	assert.Contains(t, stderr, "skipped 1 lines")

	_, stdout, _ = runCLI(t, "audit", "--state-dir", dir, "--bottle", "demo", "--all", "-n", "1")
	assert.Contains(t, stdout, "GET chatgpt.com/backend-api/x")
	assert.NotContains(t, stdout, "evil.test")

	code, _, stderr = runCLI(t, "audit", "--state-dir", t.TempDir())
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, stderr, "no audit trail at")
}
