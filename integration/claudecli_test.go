package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/admin"
	"github.com/egressgate/egressgate/internal/testenv"
)

// claudeLoginManifest forwards the host's own Claude Code login to the
// api.anthropic.com stand-in.
func claudeLoginManifest(up *upstream, pki *upstreamPKI) string {
	return fmt.Sprintf(`name: itest
agent_provider:
  template: claude
  forward_host_credentials: true
egress:
  routes:
    - host: api.anthropic.com
      upstream: {address: %q, ca_file: %q}
`, up.addr(), pki.caPath)
}

// writeClaudeLogin writes a host Claude Code login (as `claude /login`
// leaves it) into dir, expiring at exp.
func writeClaudeLogin(t *testing.T, dir, token string, exp time.Time) {
	t.Helper()
	b, err := json.Marshal(map[string]any{"claudeAiOauth": map[string]any{
		"accessToken": token, "refreshToken": "sk-ant-ort01-host-refresh-secret",
		"expiresAt": exp.UnixMilli(), "scopes": []string{"user:inference", "user:profile"}, "subscriptionType": "max",
	}})
	require.NoError(t, err)
	replaceFile(t, filepath.Join(dir, ".credentials.json"), string(b))
}

// claudeAgent is the real Claude Code run with only what agent-env wrote.
type claudeAgent struct {
	bin string
	env []string
}

func newClaudeAgent(t *testing.T, b *bottle) *claudeAgent {
	t.Helper()
	bin := testenv.ClaudeBinary(t)
	out := t.TempDir()
	code, stdout, stderr := runEgressgateEnv(t, b.env, "agent-env", "--manifest", b.manifest, "--out", out,
		"--state-dir", b.stateDir, "--proxy-url", "http://"+b.proxy, "--ca-path", out)
	require.Zero(t, code, "agent-env: %s%s", stdout, stderr)
	env := append(envFileLines(t, filepath.Join(out, "env")), "HOME="+t.TempDir(), "PATH="+os.Getenv("PATH"))
	require.Contains(t, env, "CLAUDE_CODE_OAUTH_TOKEN=egressgate-placeholder-claude-oauth-token")
	return &claudeAgent{bin: bin, env: env}
}

// turn runs `claude -p` once and returns its output and duration.
func (a *claudeAgent) turn(t *testing.T, limit time.Duration) (string, time.Duration) {
	t.Helper()
	return a.turnWith(t, limit, "say hello")
}

// turnWith is turn with a prompt of the test's choosing.
func (a *claudeAgent) turnWith(t *testing.T, limit time.Duration, prompt string) (string, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, a.bin, "-p", prompt)
	cmd.Env, cmd.Dir = a.env, t.TempDir()
	start := time.Now()
	output, err := cmd.CombinedOutput()
	took := time.Since(start)
	require.NoError(t, ctx.Err(), "claude still running after %s:\n%s", limit, tail(output, 4<<10))
	t.Logf("claude -p (%s, %v):\n%s", took.Round(time.Millisecond), err, tail(output, 2<<10))
	return string(output), took
}

// TestRealClaudeCode runs the pinned Claude Code through the egress with
// only what agent-env wrote, against a stand-in for api.anthropic.com, on
// a bottle carrying the host's own Claude Code login. Its turn completes
// with the host's token upstream; when the host logs out, the login
// expires or the provider rejects it, the next run ends within 15 s with
// the egress's reason in Claude Code's output, without silent retries.
func TestRealClaudeCode(t *testing.T) {
	pki := newUpstreamPKI(t, "api.anthropic.com")
	up := newUpstream(t, pki)
	claudeHome := t.TempDir()
	const hostToken = "sk-ant-oat01-host-held-claude-login"
	writeClaudeLogin(t, claudeHome, hostToken, time.Now().Add(8*time.Hour))
	b := startBottle(t, bottleOptions{manifest: claudeLoginManifest(up, pki), env: []string{"CLAUDE_CONFIG_DIR=" + claudeHome}})
	agent := newClaudeAgent(t, b)
	messages := func() int { return len(requestsTo(up, "api.anthropic.com")) }
	refused := func(t *testing.T, wants ...string) {
		t.Helper()
		before := messages()
		output, took := agent.turn(t, 2*refusalLimit)
		assert.Less(t, took, refusalLimit, "the reason reached the person within %s", refusalLimit)
		assert.NotContains(t, output, anthropicReply)
		for _, w := range wants {
			assert.Contains(t, output, w)
		}
		assert.NotContains(t, output, claudeHome, "no host path in what the agent shows")
		assert.Equal(t, before, messages(), "nothing reached the upstream while refused")
	}

	t.Run("turn", func(t *testing.T) {
		output, _ := agent.turn(t, 90*time.Second)
		assert.Contains(t, output, anthropicReply)
		seen := requestsTo(up, "api.anthropic.com")
		require.True(t, containsPath(seen, "/v1/messages"), "claude sent no turn")
		for _, r := range seen {
			assert.Equal(t, []string{"Bearer " + hostToken}, r.Header.Values("Authorization"), "%s %s", r.Method, r.Path)
			assertNoValueContains(t, r.Header, "placeholder")
		}
	})

	t.Run("logged out", func(t *testing.T) {
		require.NoError(t, os.Remove(filepath.Join(claudeHome, ".credentials.json")))
		eventually(t, propagation, "the logout", func() bool { return slotState(t, b).State == admin.SlotLoggedOut })
		refused(t, "egressgate:", "the host's Claude Code login is gone", "log in to Claude Code on the host")
	})

	t.Run("expired", func(t *testing.T) {
		writeClaudeLogin(t, claudeHome, hostToken+"-2", time.Now().Add(time.Second))
		eventually(t, propagation, "the expiry", func() bool { return slotState(t, b).State == admin.SlotExpired })
		refused(t, "the host's Claude Code login (EGRESS_TOKEN_0) expired at", "log in to Claude Code on the host")
	})

	t.Run("rejected upstream", func(t *testing.T) {
		const revoked = hostToken + "-revoked"
		up.revoke("Bearer " + revoked)
		writeClaudeLogin(t, claudeHome, revoked, time.Now().Add(8*time.Hour))
		eventually(t, propagation, "the new login", func() bool { return slotState(t, b).State == admin.SlotOK })
		output, took := agent.turn(t, 2*refusalLimit)
		assert.Less(t, took, refusalLimit)
		assert.Contains(t, output, "api.anthropic.com rejected the host's Claude Code login")
		sent := 0
		for _, r := range requestsTo(up, "api.anthropic.com") {
			if r.Header.Get("Authorization") == "Bearer "+revoked {
				sent++
			}
		}
		assert.LessOrEqual(t, sent, 4, "the rejected login went upstream a few times at most, not in a loop")
		assert.Equal(t, admin.SlotRejected, slotState(t, b).State)
	})

	t.Run("logged in again", func(t *testing.T) {
		writeClaudeLogin(t, claudeHome, hostToken+"-3", time.Now().Add(8*time.Hour))
		eventually(t, propagation, "the new login", func() bool { return slotState(t, b).State == admin.SlotOK })
		output, _ := agent.turn(t, 90*time.Second)
		assert.Contains(t, output, anthropicReply)
	})
}

// TestRealClaudeCodeTokenNotSet: a claude bottle whose host token variable
// is not set tells the person so through Claude Code at once.
func TestRealClaudeCodeTokenNotSet(t *testing.T) {
	pki := newUpstreamPKI(t, "api.anthropic.com")
	up := newUpstream(t, pki)
	manifest := fmt.Sprintf(`name: itest
agent_provider: {template: claude, forward_host_credentials: true, auth_token: HOST_CLAUDE_TOKEN_UNSET}
egress:
  routes:
    - host: api.anthropic.com
      upstream: {address: %q, ca_file: %q}
`, up.addr(), pki.caPath)
	b := startBottle(t, bottleOptions{manifest: manifest})
	output, took := newClaudeAgent(t, b).turn(t, 2*refusalLimit)
	assert.Less(t, took, refusalLimit)
	assert.Contains(t, output, "the host variable HOST_CLAUDE_TOKEN_UNSET (EGRESS_TOKEN_0) is not set on the host")
	assert.Contains(t, output, "set HOST_CLAUDE_TOKEN_UNSET in egressgate's environment")
	assert.Empty(t, requestsTo(up, "api.anthropic.com"))
}
