package integration

import (
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

// hostLogin is a host's Codex ChatGPT login, written the way Codex writes
// $CODEX_HOME/auth.json.
type hostLogin struct {
	home        string
	accessToken string
}

// fakeJWT signs claims with a throwaway key: egressgate never verifies the
// signature (it is not the issuer), only reads exp and the account claim.
func fakeJWT(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte("throwaway-test-key"))
	require.NoError(t, err)
	return s
}

func newHostLogin(t testing.TB, exp time.Time) *hostLogin {
	t.Helper()
	access := fakeJWT(t, jwt.MapClaims{
		"exp": exp.Unix(),
		"sub": "user-test",
		// Unique per login, as real tokens are, so that two logins made
		// within one second are two values.
		"jti": rand.Text(),
		"https://api.openai.com/auth": map[string]any{
			"chatgpt_account_id": "acct-test-123",
			"chatgpt_plan_type":  "pro",
		},
	})
	home := t.TempDir()
	writeAuthJSON(t, home, map[string]any{
		"auth_mode":      "chatgpt",
		"OPENAI_API_KEY": nil,
		"tokens": map[string]any{
			"id_token":      fakeJWT(t, jwt.MapClaims{"exp": exp.Unix(), "email": "dev@example.test"}),
			"access_token":  access,
			"refresh_token": "rt-host-refresh-secret",
			"account_id":    "acct-test-123",
		},
		"last_refresh": time.Now().UTC().Format(time.RFC3339),
	})
	return &hostLogin{home: home, accessToken: access}
}

func writeAuthJSON(t testing.TB, home string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(home, "auth.json"), b, 0o600))
}
