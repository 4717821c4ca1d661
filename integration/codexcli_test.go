package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/internal/testenv"
)

// TestRealCodexCLI runs the pinned Codex CLI, configured only with what
// `egressgate agent-env` wrote, through the egress to a stand-in for
// chatgpt.com. Every request the stand-in receives carries the host's
// token; none carries the agent's placeholder.
func TestRealCodexCLI(t *testing.T) {
	codex := testenv.CodexBinary(t)
	pki := newUpstreamPKI(t, testHosts...)
	up := newUpstream(t, pki)
	login := newHostLogin(t, time.Now().Add(time.Hour))
	b := startBottle(t, bottleOptions{manifest: codexManifest(true, up, pki), codexHome: login.home})

	out := t.TempDir()
	code, stdout, stderr := runEgressgate(t, "agent-env", "--manifest", b.manifest, "--out", out,
		"--state-dir", b.stateDir, "--codex-home", login.home,
		"--proxy-url", "http://"+b.proxy, "--ca-path", filepath.Join(out, "ca.pem"))
	require.Zero(t, code, "agent-env: %s%s", stdout, stderr)
	placeholder := placeholderAccessToken(t, filepath.Join(out, "codex", "auth.json"))

	// The agent's whole environment: the env file, its Codex home on this
	// machine (a container would mount it at CODEX_HOME), and a scratch HOME.
	env := append(envFileLines(t, filepath.Join(out, "env")),
		"CODEX_HOME="+filepath.Join(out, "codex"), "HOME="+t.TempDir(), "PATH="+os.Getenv("PATH"))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, codex, "exec", "--skip-git-repo-check", "say hello")
	cmd.Env, cmd.Dir = env, t.TempDir()
	output, err := cmd.CombinedOutput()
	t.Logf("codex exec (err %v):\n%s", err, tail(output, 4<<10))

	var seen []seenRequest
	for _, r := range up.requests() {
		if strings.HasPrefix(r.Host, "chatgpt.com") {
			seen = append(seen, r)
		}
	}
	require.NotEmpty(t, seen, "codex sent nothing to chatgpt.com through the egress")
	for _, r := range seen {
		assert.Equal(t, []string{"Bearer " + login.accessToken}, r.Header.Values("Authorization"), "%s %s", r.Method, r.Path)
		assertNoValueContains(t, r.Header, placeholder)
	}
	// Codex 0.171 also asks endpoints the stand-in does not emulate (the
	// models list, workspace routing), so its turn need not finish; what
	// matters is that its API calls went out through the egress.
	assert.True(t, slices.ContainsFunc(seen, func(r seenRequest) bool { return strings.HasPrefix(r.Path, "/backend-api/") }),
		"codex called no /backend-api/ endpoint")
}

func placeholderAccessToken(t *testing.T, authJSON string) string {
	t.Helper()
	var f struct {
		Tokens struct {
			AccessToken string `json:"access_token"`
		} `json:"tokens"`
	}
	require.NoError(t, json.Unmarshal([]byte(readFile(t, authJSON)), &f))
	require.NotEmpty(t, f.Tokens.AccessToken)
	return f.Tokens.AccessToken
}

func envFileLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var env []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			env = append(env, line)
		}
	}
	require.NoError(t, sc.Err())
	return env
}
