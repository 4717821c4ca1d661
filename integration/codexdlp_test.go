package integration

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/audit"
)

// TestRealCodexCanaryStopped: the real Codex CLI, given only what agent-env
// wrote (which plants canary credentials in its environment), is asked to
// send a prompt holding the planted AWS key id. The egress refuses the turn
// (the bottle's default DLP mode), Codex shows the refusal, and the
// stand-in never receives the turn.
func TestRealCodexCanaryStopped(t *testing.T) {
	pki := newUpstreamPKI(t, testHosts...)
	up := newUpstream(t, pki)
	login := newHostLogin(t, time.Now().Add(time.Hour))
	b := startBottle(t, bottleOptions{manifest: codexManifest(true, up, pki), codexHome: login.home})
	agent := newCodexAgent(t, b, login.home)
	canary := envValue(agent.env, "AWS_ACCESS_KEY_ID")
	require.NotEmpty(t, canary, "agent-env planted an AWS key id")

	// serve picks up the canaries agent-env recorded without a restart.
	eventually(t, propagation, "serve holds the new canaries", func() bool {
		return strings.Contains(b.stderr.String(), "canaries loaded")
	})
	output, took := agent.turnWith(t, 2*refusalLimit, "Post this to our team channel: my AWS key is "+canary)
	t.Logf("codex exec (%s):\n%s", took.Round(time.Millisecond), tail([]byte(output), 2<<10))
	assert.Less(t, took, refusalLimit)
	assert.NotContains(t, output, codexReply)
	assert.Contains(t, output, "refused")
	assert.Contains(t, output, "canary")
	// Codex first tries its Responses WebSocket (a GET the stand-in turns
	// down, before any prompt is sent), then POSTs the turn.
	for _, r := range requestsTo(up, "chatgpt.com") {
		assert.False(t, r.Method == "POST" && r.Path == "/backend-api/codex/responses", "the turn reached the stand-in")
	}
	r := recordFor(t, b.stateDir, "the refused turn", func(r audit.Record) bool {
		return r.Path == "/backend-api/codex/responses" && r.Reason == "dlp_secret"
	})
	require.NotEmpty(t, r.DLP)
	assert.Equal(t, "canary", r.DLP[0].Kind)
	assert.NotContains(t, readFile(t, b.stateDir+"/"+audit.FileName), canary)
}

// TestRealClaudeCodeCanaryStopped is the same for the real Claude Code:
// its person reads the refusal (Anthropic's error shape), and the
// stand-in never receives the message.
func TestRealClaudeCodeCanaryStopped(t *testing.T) {
	pki := newUpstreamPKI(t, "api.anthropic.com")
	up := newUpstream(t, pki)
	claudeHome := t.TempDir()
	writeClaudeLogin(t, claudeHome, "sk-ant-oat01-host-held-claude-login", time.Now().Add(8*time.Hour))
	b := startBottle(t, bottleOptions{manifest: claudeLoginManifest(up, pki), env: []string{"CLAUDE_CONFIG_DIR=" + claudeHome}})
	agent := newClaudeAgent(t, b)
	canary := envValue(agent.env, "AWS_ACCESS_KEY_ID")
	require.NotEmpty(t, canary, "agent-env planted an AWS key id")
	eventually(t, propagation, "serve holds the new canaries", func() bool {
		return strings.Contains(b.stderr.String(), "canaries loaded")
	})
	output, took := agent.turnWith(t, 2*refusalLimit, "Post this to our team channel: my AWS key is "+canary)
	assert.Less(t, took, refusalLimit)
	assert.NotContains(t, output, anthropicReply)
	assert.NotContains(t, output, "Failed to authenticate", "a refused secret is not an authentication failure")
	assert.Contains(t, output, "refused")
	assert.Contains(t, output, "canary")
	for _, r := range requestsTo(up, "api.anthropic.com") {
		assert.False(t, r.Method == "POST" && r.Path == "/v1/messages", "the message reached the stand-in")
	}
}

// envValue is the value of key in KEY=VALUE lines.
func envValue(env []string, key string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

// turnWith is turn with a prompt of the test's choosing.
func (a *codexAgent) turnWith(t *testing.T, limit time.Duration, prompt string) (string, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, a.bin, "exec", "--skip-git-repo-check", prompt)
	cmd.Env, cmd.Dir = a.env, t.TempDir()
	start := time.Now()
	output, err := cmd.CombinedOutput()
	took := time.Since(start)
	require.NoError(t, ctx.Err(), "codex exec still running after %s:\n%s", limit, tail(output, 4<<10))
	if err != nil {
		t.Logf("codex exec ended with %v after %s", err, took.Round(time.Millisecond))
	}
	return string(output), took
}
