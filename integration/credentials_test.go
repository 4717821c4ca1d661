package integration

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/admin"
)

// chatgptTurn sends one Codex-like turn request through the egress and
// returns the status and body the agent sees.
func chatgptTurn(t testing.TB, client *http.Client) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "https://chatgpt.com/backend-api/codex/responses", strings.NewReader("{}"))
	require.NoError(t, err)
	req.Header.Set("Authorization", agentPlaceholder)
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	return resp.StatusCode, readAll(t, resp.Body)
}

// slotState is the state /status gives the bottle's first slot.
func slotState(t testing.TB, b *bottle) admin.SlotStatus {
	t.Helper()
	return status(t, b.admin).Bottles[0].Slots[0]
}

// TestHostLogoutRevokes: deleting the host's auth.json, or switching it to
// an API key, stops injection within the propagation time of a rotation,
// and the agent is told the host is logged out and what to do; a new
// login on the host brings the bottle back. None of it is a failed reload.
func TestHostLogoutRevokes(t *testing.T) {
	pki := newUpstreamPKI(t, testHosts...)
	up := newUpstream(t, pki)
	login := newHostLogin(t, time.Now().Add(time.Hour))
	authJSON := filepath.Join(login.home, "auth.json")
	b := startBottle(t, bottleOptions{manifest: codexManifest(true, up, pki), codexHome: login.home})
	client := b.agent(t, false)
	code, _ := chatgptTurn(t, client)
	require.Equal(t, http.StatusOK, code)

	logouts := map[string]func(){
		"deleted": func() { require.NoError(t, os.Remove(authJSON)) },
		"api key": func() {
			writeAuthJSON(t, login.home, map[string]any{"auth_mode": "apikey", "OPENAI_API_KEY": "sk-test-not-real"})
		},
		"emptied": func() { require.NoError(t, os.WriteFile(authJSON, nil, 0o600)) },
	}
	for name, logout := range logouts {
		t.Run(name, func(t *testing.T) {
			relogin := newHostLogin(t, time.Now().Add(time.Hour))
			replaceFile(t, authJSON, readFile(t, filepath.Join(relogin.home, "auth.json")))
			eventually(t, propagation, "the new login", func() bool {
				code, _ := chatgptTurn(t, client)
				return code == http.StatusOK && lastRequestTo(t, up, "/backend-api/codex/responses").Header.Get("Authorization") == "Bearer "+relogin.accessToken
			})

			start := time.Now()
			logout()
			var body string
			eventually(t, propagation, "the logout to stop injection", func() bool {
				var code int
				code, body = chatgptTurn(t, client)
				return code == http.StatusBadRequest
			})
			t.Logf("%s: injection stopped %s after the logout", name, time.Since(start).Round(time.Millisecond))
			assert.Contains(t, body, "the host's Codex login is gone")
			assert.Contains(t, body, "logged out")
			assert.Contains(t, body, "codex login --device-auth")
			assert.NotContains(t, body, login.home, "no host path reaches the agent")

			// From now on the upstream never sees the old login.
			seen := len(up.requests())
			for range 5 {
				code, _ := chatgptTurn(t, client)
				assert.Equal(t, http.StatusBadRequest, code)
			}
			assert.Len(t, up.requests(), seen, "a request reached the upstream after the logout")

			st := status(t, b.admin).Bottles[0]
			assert.Empty(t, st.LastReloadError, "a logout is not a failed reload")
			assert.Equal(t, admin.SlotLoggedOut, st.Slots[0].State)
			assert.False(t, st.Slots[0].Present)
			metrics := httpGet(t, "http://"+b.admin+"/metrics")
			assert.Contains(t, metrics, `egressgate_credential_state{bottle="itest",slot="EGRESS_TOKEN_0",source="codex `+authJSON+`",state="logged_out"} 1`)
		})
	}
}

// TestUpstreamRejectionStopsTheLogin: the provider answers 401 to the
// host's token (revoked). The egress notices from Envoy's access log,
// refuses the login's routes with the reason from then on, shows it in
// status and metrics, and the upstream sees no loop. A new host login
// clears it.
func TestUpstreamRejectionStopsTheLogin(t *testing.T) {
	pki := newUpstreamPKI(t, testHosts...)
	up := newUpstream(t, pki)
	login := newHostLogin(t, time.Now().Add(time.Hour))
	b := startBottle(t, bottleOptions{manifest: codexManifest(true, up, pki), codexHome: login.home})
	client := b.agent(t, true)
	up.revoke("Bearer " + login.accessToken)

	code, _ := chatgptTurn(t, client)
	require.Equal(t, http.StatusUnauthorized, code, "the provider's own refusal passes through once")
	eventually(t, propagation, "the rejection to show in status", func() bool {
		return slotState(t, b).State == admin.SlotRejected
	})
	for range 10 {
		code, body := chatgptTurn(t, client)
		require.Equal(t, http.StatusBadRequest, code)
		assert.Contains(t, body, "chatgpt.com rejected the host's Codex login")
		assert.Contains(t, body, "codex login --device-auth")
	}
	carried := 0
	for _, r := range up.requests() {
		if r.Header.Get("Authorization") == "Bearer "+login.accessToken {
			carried++
		}
	}
	assert.Equal(t, 1, carried, "the rejected token went upstream once, not in a loop")
	assert.Contains(t, slotState(t, b).Detail, "chatgpt.com answered 401")
	metrics := httpGet(t, "http://"+b.admin+"/metrics")
	assert.Contains(t, metrics, `egressgate_credential_rejections_total{bottle="itest",host="chatgpt.com",slot="EGRESS_TOKEN_0"} 1`)
	assert.NotContains(t, metrics, login.accessToken)
	code, out, stderr := runEgressgate(t, "status", "--admin", b.admin)
	require.Zero(t, code, stderr)
	assert.Contains(t, out, "rejected")

	relogin := newHostLogin(t, time.Now().Add(time.Hour))
	replaceFile(t, filepath.Join(login.home, "auth.json"), readFile(t, filepath.Join(relogin.home, "auth.json")))
	eventually(t, propagation, "the new login to be sent", func() bool {
		code, _ := chatgptTurn(t, client)
		return code == http.StatusOK
	})
	assert.Equal(t, admin.SlotOK, slotState(t, b).State)
}
