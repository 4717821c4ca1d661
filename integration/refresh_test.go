package integration

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/codexauth"
)

// TestCodexRefreshAnsweredLocally: when the agent's placeholder runs out,
// Codex posts its placeholder refresh token to auth.openai.com. The egress
// answers with placeholders of its own lifetime, mirroring the host's
// current login; the stand-in for auth.openai.com receives nothing.
func TestCodexRefreshAnsweredLocally(t *testing.T) {
	pki := newUpstreamPKI(t, testHosts...)
	up := newUpstream(t, pki)
	login := newHostLogin(t, time.Now().Add(time.Hour))
	b := startBottle(t, bottleOptions{manifest: codexManifest(true, up, pki), codexHome: login.home})

	rotated := newHostLogin(t, time.Now().Add(3*time.Hour))
	replaceFile(t, filepath.Join(login.home, "auth.json"), readFile(t, filepath.Join(rotated.home, "auth.json")))
	eventually(t, propagation, "the rotated host login", func() bool {
		s := status(t, b.admin).Bottles[0].Slots
		return len(s) == 1 && s[0].Expiry != nil && s[0].Expiry.After(time.Now().Add(2*time.Hour))
	})

	client := b.agent(t, true)
	body := `{"client_id":"app_EMoamEEZ73f0CkXaXp7hrann","grant_type":"refresh_token","refresh_token":"egressgate-placeholder-refresh-0123","scope":"openid profile email"}`
	resp, err := client.Post("https://auth.openai.com/oauth/token", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var tokens struct {
		IDToken      string `json:"id_token"`
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&tokens))
	claims := jwt.MapClaims{}
	_, _, err = jwt.NewParser().ParseUnverified(tokens.AccessToken, claims)
	require.NoError(t, err)
	exp, err := claims.GetExpirationTime()
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now().Add(codexauth.PlaceholderLifetime), exp.Time, time.Minute,
		"the placeholder lasts its own lifetime, far from Codex's refresh window, whatever the host token has left")
	for _, tok := range []string{tokens.IDToken, tokens.AccessToken, tokens.RefreshToken} {
		assert.NotContains(t, tok, rotated.accessToken)
		assert.NotContains(t, tok, "rt-host-refresh-secret")
	}

	// Nothing else on auth.openai.com is open, and nothing reached it.
	resp, err = client.Get("https://auth.openai.com/api/accounts/me")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	for _, r := range up.requests() {
		assert.NotEqual(t, "auth.openai.com", strings.Split(r.Host, ":")[0], "auth.openai.com's stand-in received %s", r.Path)
	}
}
