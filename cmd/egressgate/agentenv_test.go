package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/agentenv/leakcheck"
	"github.com/egressgate/egressgate/codexauth"
)

// agentEnvHost is a host with known credentials on disk and in the
// process environment, none of which agent-env may pass on.
type agentEnvHost struct {
	dir, codexHome      string
	access, id, refresh string
	exp                 time.Time
	env                 map[string]string
}

const agentEnvAccount = "4f1c2a9e-7b3d-4e8a-9c1f-2d5b6a7e8f90"

func newAgentEnvHost(t *testing.T) *agentEnvHost {
	dir := t.TempDir()
	h := &agentEnvHost{
		dir:       dir,
		codexHome: filepath.Join(dir, "codex-home"),
		refresh:   "rt_HOST-REFRESH-TOKEN.z8Qw3ErTy6UiOp0As4Df",
		// Real time: the command checks the host token against the clock.
		exp: time.Now().Add(2 * time.Hour).Truncate(time.Second).UTC(),
		env: map[string]string{
			"OPENAI_API_KEY":     "sk-proj-HOSTAPIKEY0123456789abcdefABCDEF",
			"CODEX_API_KEY":      "sk-proj-HOSTCODEXKEY0123456789abcdef",
			"CODEX_ACCESS_TOKEN": "HOSTCODEXACCESSTOKEN0123456789abcdef",
			"ANTHROPIC_API_KEY":  "sk-ant-api03-HOSTANTHROPICKEY0123456789",
			"CLAUDE_TOKEN":       "sk-ant-oat01-HOSTCLAUDETOKEN0123456789abcdef",
		},
	}
	h.access = agentEnvJWT(t, h.exp, "authsess_ACCESSSESSION0123456789")
	h.id = agentEnvJWT(t, h.exp, "authsess_IDTOKENSESSION0123456789")
	for k, v := range h.env {
		t.Setenv(k, v)
	}
	return h
}

func agentEnvJWT(t *testing.T, exp time.Time, session string) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"exp":                         exp.Unix(),
		"sub":                         "google-oauth2|104729384756102938475",
		"session_id":                  session,
		"https://api.openai.com/auth": map[string]any{"chatgpt_account_id": agentEnvAccount, "chatgpt_plan_type": "plus"},
	}).SignedString([]byte("the host's signing key"))
	require.NoError(t, err)
	return s
}

func (h *agentEnvHost) writeLogin(t *testing.T) {
	t.Helper()
	data, err := json.Marshal(map[string]any{
		"auth_mode": "chatgpt", "OPENAI_API_KEY": nil,
		"tokens": map[string]any{"id_token": h.id, "access_token": h.access, "refresh_token": h.refresh, "account_id": agentEnvAccount},
	})
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(h.codexHome, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(h.codexHome, "auth.json"), data, 0o600))
}

func (h *agentEnvHost) manifest(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(h.dir, name+".md")
	require.NoError(t, os.WriteFile(p, []byte("---\nname: "+name+"\n"+text+"---\n"), 0o644))
	return p
}

// runAgentEnv runs the agent-env command as the CLI would, returning its
// output directory, stdout and stderr.
func (h *agentEnvHost) runAgentEnv(t *testing.T, manifest string) (string, string, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "agent")
	var stdout, stderr bytes.Buffer
	cmd := agentEnvCommand()
	cmd.SetArgs([]string{"--manifest", manifest, "--out", out, "--state-dir", filepath.Join(h.dir, "state"), "--codex-home", h.codexHome})
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	require.NoError(t, cmd.ExecuteContext(context.Background()), stderr.String())
	return out, stdout.String(), stderr.String()
}

// TestAgentEnvHygiene is issue 4's hygiene test through the CLI, with the
// host's credentials in real files and the real environment.
func TestAgentEnvHygiene(t *testing.T) {
	h := newAgentEnvHost(t)
	h.writeLogin(t)
	bottles := map[string]string{
		"codex":  h.manifest(t, "codex", "agent_provider:\n  template: codex\n  forward_host_credentials: true\n"),
		"claude": h.manifest(t, "claude", "agent_provider:\n  template: claude\n  forward_host_credentials: true\n  auth_token: CLAUDE_TOKEN\n"),
	}
	for name, manifest := range bottles {
		t.Run(name, func(t *testing.T) {
			out, stdout, stderr := h.runAgentEnv(t, manifest)
			outputs, err := leakcheck.Texts(out)
			require.NoError(t, err)
			outputs["stdout"], outputs["stderr"] = stdout, stderr
			secrets := map[string]string{"access token": h.access, "id token": h.id, "refresh token": h.refresh}
			for k, v := range h.env {
				secrets["$"+k] = v
			}
			for oname, text := range outputs {
				for what, secret := range secrets {
					assert.Empty(t, leakcheck.Leak(text, secret, agentEnvAccount), "%s holds a piece of the host's %s", oname, what)
				}
			}
			for _, k := range []string{"OPENAI_API_KEY", "CODEX_ACCESS_TOKEN", "CODEX_API_KEY", "ANTHROPIC_API_KEY"} {
				assert.NotContains(t, outputs["env"], k+"=")
			}
			assert.Contains(t, stdout, "wrote "+filepath.Join(out, "env"))
		})
	}

	out, _, _ := h.runAgentEnv(t, bottles["codex"])
	assertPlaceholderLogin(t, filepath.Join(out, "codex", "auth.json"), h.exp)
}

func assertPlaceholderLogin(t *testing.T, path string, exp time.Time) {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var f struct {
		AuthMode string  `json:"auth_mode"`
		APIKey   *string `json:"OPENAI_API_KEY"`
		Tokens   struct {
			AccessToken  string `json:"access_token"`
			IDToken      string `json:"id_token"`
			RefreshToken string `json:"refresh_token"`
		} `json:"tokens"`
	}
	require.NoError(t, json.Unmarshal(data, &f))
	assert.Equal(t, "chatgpt", f.AuthMode)
	assert.Nil(t, f.APIKey)
	assert.True(t, strings.HasPrefix(f.Tokens.RefreshToken, codexauth.PlaceholderRefreshPrefix))
	for _, tok := range []string{f.Tokens.AccessToken, f.Tokens.IDToken} {
		c, err := codexauth.ClaimsFromAccessToken(tok)
		require.NoError(t, err)
		// Its own lifetime, never the host token's nearer expiry, which
		// would put Codex in its refresh window.
		assert.WithinDuration(t, time.Now().Add(codexauth.PlaceholderLifetime), c.Expiry, time.Minute)
		assert.True(t, c.Expiry.After(exp))
		assert.Equal(t, agentEnvAccount, c.AccountID)
	}
}

// TestAgentEnvNotForwarded: with forwarding off, agent-env never opens the
// host's auth.json (here a directory, which any read would fail on) and
// writes no login.
func TestAgentEnvNotForwarded(t *testing.T) {
	h := newAgentEnvHost(t)
	require.NoError(t, os.MkdirAll(filepath.Join(h.codexHome, "auth.json"), 0o700))
	t.Setenv("CODEX_HOME", h.codexHome)
	manifest := h.manifest(t, "codex", "agent_provider:\n  template: codex\n")

	out, stdout, _ := h.runAgentEnv(t, manifest)
	assert.NoFileExists(t, filepath.Join(out, "codex", "auth.json"))
	assert.FileExists(t, filepath.Join(out, "env"))
	assert.FileExists(t, filepath.Join(out, "ca.pem"))
	assert.Contains(t, stdout, "set forward_host_credentials: true")
	assert.NotContains(t, stdout, "wrote "+filepath.Join(out, "codex"))
}

func TestAgentEnvRequiresOut(t *testing.T) {
	cmd := agentEnvCommand()
	cmd.SetArgs([]string{"--manifest", "m.md"})
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	err := cmd.Execute()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "out")
}
