package integration

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/internal/testenv"
)

// codexReply is the text of a turn the chatgpt.com stand-in completes.
const codexReply = "hello from the stand-in"

// codexAgent is the real Codex CLI set up the way a bottle's agent is:
// with only what `egressgate agent-env` wrote, the env file as written
// (its CODEX_HOME included), and a scratch HOME.
type codexAgent struct {
	bin string
	out string // agent-env's output: the agent's mount
	env []string
}

func newCodexAgent(t *testing.T, b *bottle, codexHome string) *codexAgent {
	t.Helper()
	bin := testenv.CodexBinary(t)
	out := t.TempDir()
	// --ca-path is the directory the agent sees agent-env's output at;
	// here the agent runs on this machine, so that is out itself.
	code, stdout, stderr := runEgressgate(t, "agent-env", "--manifest", b.manifest, "--out", out,
		"--state-dir", b.stateDir, "--codex-home", codexHome, "--proxy-url", "http://"+b.proxy, "--ca-path", out)
	require.Zero(t, code, "agent-env: %s%s", stdout, stderr)
	env := append(envFileLines(t, filepath.Join(out, "env")), "HOME="+t.TempDir(), "PATH="+os.Getenv("PATH"))
	require.Contains(t, env, "CODEX_HOME="+filepath.Join(out, "codex"), "the env file points Codex at the home agent-env wrote")
	return &codexAgent{bin: bin, out: out, env: env}
}

// turn runs one `codex exec` and returns its combined output and how long
// it took. A turn that does not end within limit is a failure: Codex
// retrying in silence is what these tests are about.
func (a *codexAgent) turn(t *testing.T, limit time.Duration) (string, time.Duration) {
	t.Helper()
	return a.turnWith(t, limit, "say hello")
}

// placeholderAccess is the access token in the agent's auth.json.
func (a *codexAgent) placeholderAccess(t *testing.T) string {
	t.Helper()
	var f struct {
		Tokens struct {
			AccessToken string `json:"access_token"`
		} `json:"tokens"`
	}
	require.NoError(t, json.Unmarshal([]byte(readFile(t, filepath.Join(a.out, "codex", "auth.json"))), &f))
	require.NotEmpty(t, f.Tokens.AccessToken)
	return f.Tokens.AccessToken
}

// TestRealCodexCLI runs the pinned Codex CLI, configured only with what
// `egressgate agent-env` wrote, through the egress to a stand-in for
// chatgpt.com. Its turn completes; every request the stand-in receives
// carries the host's token and none the agent's placeholder.
func TestRealCodexCLI(t *testing.T) {
	pki := newUpstreamPKI(t, testHosts...)
	up := newUpstream(t, pki)
	login := newHostLogin(t, time.Now().Add(time.Hour))
	b := startBottle(t, bottleOptions{manifest: codexManifest(true, up, pki), codexHome: login.home})
	agent := newCodexAgent(t, b, login.home)
	placeholder := agent.placeholderAccess(t)

	output, took := agent.turn(t, 90*time.Second)
	t.Logf("codex exec (%s):\n%s", took.Round(time.Millisecond), tail([]byte(output), 4<<10))
	assert.Contains(t, output, codexReply, "the turn completed")

	seen := requestsTo(up, "chatgpt.com")
	require.NotEmpty(t, seen, "codex sent nothing to chatgpt.com through the egress")
	for _, r := range seen {
		assert.Equal(t, []string{"Bearer " + login.accessToken}, r.Header.Values("Authorization"), "%s %s", r.Method, r.Path)
		assertNoValueContains(t, r.Header, placeholder)
	}
	assert.True(t, containsPath(seen, "/backend-api/codex/responses"), "codex sent no turn")
	paths := map[string]int{}
	for _, r := range seen {
		paths[r.Method+" "+r.Path]++
	}
	t.Logf("one turn sent %d requests to chatgpt.com: %v", len(seen), paths)
}

func requestsTo(up *upstream, host string) []seenRequest {
	var out []seenRequest
	for _, r := range up.requests() {
		if strings.Split(r.Host, ":")[0] == host {
			out = append(out, r)
		}
	}
	return out
}

func containsPath(rs []seenRequest, path string) bool {
	for _, r := range rs {
		if r.Path == path {
			return true
		}
	}
	return false
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
