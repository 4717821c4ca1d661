package agentenv

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/config"
)

var testNow = time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)

// The host as the tests set it up: a Codex login and environment
// variables holding known credentials, none of which may reach the agent.
const (
	hostCodexHome = "/home/u/.codex"
	hostAuthJSON  = hostCodexHome + "/auth.json"
	hostAccount   = "4f1c2a9e-7b3d-4e8a-9c1f-2d5b6a7e8f90"
	hostUser      = "user-Hq3kZ9pLmN2xR7tVw8Yc"
	hostPlan      = "pro"
	hostRefresh   = "rt_HOST-REFRESH-TOKEN.z8Qw3ErTy6UiOp0As4Df"
	hostAPIKey    = "sk-proj-HOSTAPIKEY0123456789abcdefABCDEF"
	hostClaude    = "sk-ant-oat01-HOSTCLAUDETOKEN0123456789abcdef"
	claudeEnvVar  = "CLAUDE_TOKEN"
	openaiAud     = "https://api.openai.com/v1"
)

// hostEnv is the host environment: every variable an agent CLI would read
// a credential from, set to a known value.
func hostEnv() map[string]string {
	return map[string]string{
		"OPENAI_API_KEY":     hostAPIKey,
		"CODEX_API_KEY":      hostAPIKey + "-codex",
		"CODEX_ACCESS_TOKEN": hostAPIKey + "-access",
		"ANTHROPIC_API_KEY":  hostAPIKey + "-anthropic",
		claudeEnvVar:         hostClaude,
	}
}

// hostExp is the host access token's expiry: seconds, as a JWT holds it.
var hostExp = testNow.Add(3 * time.Hour)

// hostTokenClaims lays a host token out the way OpenAI's are, not the way
// the placeholders are: other claims, in another order, under HS256.
type hostTokenClaims struct {
	Auth struct {
		UserID    string `json:"chatgpt_user_id"`
		PlanType  string `json:"chatgpt_plan_type"`
		AccountID string `json:"chatgpt_account_id"`
	} `json:"https://api.openai.com/auth"`
	Email   string `json:"email,omitempty"`
	Session string `json:"session_id"`
	jwt.RegisteredClaims
}

func hostJWT(t *testing.T, email, session string) string {
	t.Helper()
	var c hostTokenClaims
	c.Auth.UserID, c.Auth.PlanType, c.Auth.AccountID = hostUser, hostPlan, hostAccount
	c.Email, c.Session = email, session
	c.RegisteredClaims = jwt.RegisteredClaims{
		Issuer:    "https://auth.openai.com",
		Subject:   "google-oauth2|104729384756102938475",
		Audience:  jwt.ClaimStrings{openaiAud},
		IssuedAt:  jwt.NewNumericDate(testNow.Add(-time.Hour)),
		ExpiresAt: jwt.NewNumericDate(hostExp),
		ID:        "jti-" + session,
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte("the host's signing key"))
	require.NoError(t, err)
	return s
}

// hostLogin is the host's Codex login: the three tokens its auth.json
// holds.
type hostLogin struct{ access, id, refresh string }

func newHostLogin(t *testing.T) hostLogin {
	return hostLogin{
		access:  hostJWT(t, "", "authsess_ACCESSSESSION0123456789"),
		id:      hostJWT(t, "someone@example.com", "authsess_IDTOKENSESSION0123456789"),
		refresh: hostRefresh,
	}
}

func (l hostLogin) authJSON(t *testing.T) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"auth_mode":      "chatgpt",
		"OPENAI_API_KEY": nil,
		"tokens": map[string]any{
			"id_token": l.id, "access_token": l.access, "refresh_token": l.refresh, "account_id": hostAccount,
		},
		"last_refresh": testNow.Add(-time.Hour).Format(time.RFC3339),
	})
	require.NoError(t, err)
	return string(b)
}

// fakeHost serves config's reads from maps and records each file opened.
type fakeHost struct {
	files  map[string]string
	env    map[string]string
	opened []string
}

func newFakeHost(t *testing.T, login hostLogin) *fakeHost {
	return &fakeHost{
		files: map[string]string{hostAuthJSON: login.authJSON(t)},
		env:   hostEnv(),
	}
}

func (h *fakeHost) options(t *testing.T, manifest string) Options {
	const path = "/bottle/manifest.yaml"
	h.files[path] = manifest
	return Options{
		Manifest: path,
		OutDir:   filepath.Join(t.TempDir(), "agent"),
		StateDir: filepath.Join(t.TempDir(), "state"),
		Host: config.Options{
			ReadFile: func(p string) ([]byte, error) {
				h.opened = append(h.opened, p)
				s, ok := h.files[p]
				if !ok {
					return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
				}
				return []byte(s), nil
			},
			LookupEnv: func(k string) (string, bool) {
				v, ok := h.env[k]
				return v, ok
			},
			CodexHome: hostCodexHome,
			Now:       func() time.Time { return testNow },
		},
		// The tests of the other outputs compare the env file whole;
		// canaries_test.go plants canaries, and TestHygiene runs with them.
		NoCanaries: true,
	}
}

func codexManifest(forward bool) string {
	return "name: demo\nagent_provider:\n  template: codex\n  forward_host_credentials: " + boolText(forward) + "\n"
}

func claudeManifest(forward bool) string {
	return "name: demo\nagent_provider:\n  template: claude\n  forward_host_credentials: " + boolText(forward) +
		"\n  auth_token: " + claudeEnvVar + "\n"
}

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// setRealEnv puts the host credentials in the process environment too, so
// that code reading os.Getenv behind config's back would be caught.
func setRealEnv(t *testing.T) {
	for k, v := range hostEnv() {
		t.Setenv(k, v)
	}
}

// readEnv parses an env file into its variables, requiring every line to
// be KEY=VALUE.
func readEnv(t *testing.T, dir string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "env"))
	require.NoError(t, err)
	env := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		k, v, ok := strings.Cut(line, "=")
		require.True(t, ok, "env line %q is not KEY=VALUE", line)
		require.NotContains(t, env, k, "env sets %s twice", k)
		env[k] = v
	}
	return env
}
