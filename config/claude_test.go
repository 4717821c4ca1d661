package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	testClaudeCredentials = "/home/u/.claude/.credentials.json"
	testClaudeToken       = "sk-ant-oat01-HOST-held-claude-token"
	claudeRefresh         = "sk-ant-ort01-REFRESH-never-leaves-the-parser"
)

func claudeLoginManifest() string {
	return "name: demo\nagent_provider:\n  template: claude\n  forward_host_credentials: true\n"
}

func claudeCredentials(t *testing.T, exp time.Time) string {
	t.Helper()
	return marshal(t, map[string]any{"claudeAiOauth": map[string]any{
		"accessToken": testClaudeToken, "refreshToken": claudeRefresh,
		"expiresAt": exp.UnixMilli(), "scopes": []string{"user:inference"}, "subscriptionType": "pro",
	}})
}

// TestClaudeLoginForwarded: a claude bottle forwarding host credentials
// without auth_token carries the host's own Claude Code login, found the
// way Claude Code finds it, with its expiry; nothing of the refresh token
// is kept.
func TestClaudeLoginForwarded(t *testing.T) {
	exp := testNow.Add(8 * time.Hour).Truncate(time.Millisecond)
	for name, env := range map[string]map[string]string{
		"HOME":              {"HOME": "/home/u"},
		"CLAUDE_CONFIG_DIR": {"CLAUDE_CONFIG_DIR": "/home/u/.claude", "HOME": "/elsewhere"},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHost(claudeLoginManifest())
			h.env = env
			h.files[testClaudeCredentials] = claudeCredentials(t, exp)
			p := h.mustLoad(t)
			require.Equal(t, []Slot{{
				Name: "EGRESS_TOKEN_0", Source: Source{Kind: SourceClaude, Ref: testClaudeCredentials},
				Value: NewSecret(testClaudeToken), Expiry: exp,
			}}, p.Slots)
			route, ok := p.Route("api.anthropic.com")
			require.True(t, ok)
			assert.Equal(t, &Auth{Scheme: "Bearer", Slot: "EGRESS_TOKEN_0"}, route.Auth)
			assert.Contains(t, p.Inputs, testClaudeCredentials, "a logout is seen at once")
			assert.NoError(t, p.HostLoginError())
		})
	}
}

// TestClaudeLoginGone: each way the host's Claude login can be unusable
// empties the slot with a problem naming the fix (logged out), and is a
// start-up error; an expired login is kept and refused by its expiry.
func TestClaudeLoginGone(t *testing.T) {
	tests := []struct{ name, content, problem string }{
		{"logged out", "", "not found"},
		{"emptied", " ", "is empty"},
		{"not JSON", "{" + claudeRefresh, "is not Claude Code's credentials file"},
		{"no login", `{"mcpOAuth": {}}`, "holds no Claude login (claudeAiOauth)"},
		{"no token", `{"claudeAiOauth": {"refreshToken": "` + claudeRefresh + `"}}`, "holds no claudeAiOauth.accessToken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHost(claudeLoginManifest())
			h.env = map[string]string{"HOME": "/home/u"}
			if tt.content != "" {
				h.files[testClaudeCredentials] = tt.content
			}
			p := h.mustLoad(t)
			want := testClaudeCredentials + ": " + tt.problem + "; log in to Claude Code on the host (run `claude`, then /login)"
			assert.True(t, p.Slots[0].LoggedOut())
			assert.Equal(t, want, p.Slots[0].Problem)
			assert.NotContains(t, p.Slots[0].Problem, claudeRefresh)
			assert.EqualError(t, p.HostLoginError(), testManifest+":4: "+want)
		})
	}
	t.Run("expired", func(t *testing.T) {
		h := newHost(claudeLoginManifest())
		h.env = map[string]string{"HOME": "/home/u"}
		h.files[testClaudeCredentials] = claudeCredentials(t, testNow.Add(-time.Minute))
		p := h.mustLoad(t)
		assert.True(t, p.Slots[0].Present() && p.Slots[0].Expired(testNow))
		assert.ErrorContains(t, p.HostLoginError(), "access token expired at 2026-11-28T08:59:00Z")
	})
}
