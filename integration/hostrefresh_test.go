package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/internal/standin"
	"github.com/egressgate/egressgate/internal/testenv"
)

// refreshManifest forwards the host's Codex login and asks egressgate to
// keep it fresh; auth.openai.com (the token endpoint) and chatgpt.com are
// the loopback stand-in.
func refreshManifest(up *upstream, pki *upstreamPKI) string {
	route := func(host string) string {
		return fmt.Sprintf("    - host: %s\n      upstream: {address: %q, ca_file: %q}\n", host, up.addr(), pki.caPath)
	}
	return `name: itest
agent_provider:
  template: codex
  forward_host_credentials: true
  refresh_host_credentials: true
egress:
  routes:
` + route("chatgpt.com") + route("auth.openai.com")
}

// TestHostLoginKeptFresh: with refresh_host_credentials, egressgate
// refreshes the host's login before it expires, at a token endpoint that
// rotates refresh tokens and refuses reused ones, and every request in
// between carries a live host token: the bottle keeps working with
// nobody using Codex on the host. The file it leaves behind is one the
// real Codex CLI takes as a ChatGPT login.
func TestHostLoginKeptFresh(t *testing.T) {
	// Twelve-second logins are refreshed half-way, every six seconds,
	// which leaves six seconds of slack on a loaded machine.
	rb := startRefreshingBottle(t, 12*time.Second)
	b, up, home, authJSON := rb.bottle, rb.up, rb.home, rb.authJSON
	client := b.agent(t, false)

	tokens := map[string]bool{}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		code, body := chatgptTurn(t, client)
		require.Equal(t, http.StatusOK, code, "a request failed while egressgate kept the login fresh: %s", body)
		tokens[lastRequestTo(t, up, "/backend-api/codex/responses").Header.Get("Authorization")] = true
		time.Sleep(250 * time.Millisecond) // paces the requests; nothing waits on it
	}
	refreshes := up.oauth.Refreshes()
	t.Logf("%d refreshes, %d distinct host tokens upstream in 20 s", refreshes, len(tokens))
	assert.GreaterOrEqual(t, refreshes, 2)
	assert.LessOrEqual(t, refreshes, 5, "one refresh per half-life, no more")
	assert.GreaterOrEqual(t, len(tokens), 3, "each refresh reached the upstream")

	st := slotState(t, b)
	require.NotNil(t, st.Refresh)
	assert.Empty(t, st.Refresh.Error)
	assert.False(t, st.Refresh.LastRefresh.IsZero())
	assert.Contains(t, httpGet(t, "http://"+b.admin+"/metrics"), `egressgate_host_login_refreshes_total{login="`+authJSON+`",result="success"}`)

	// The file: still the host's Codex login, fields egressgate does not
	// know kept, mode 0600.
	var f map[string]any
	require.NoError(t, json.Unmarshal([]byte(readFile(t, authJSON)), &f))
	assert.Equal(t, map[string]any{"kept": true}, f["agent_identity_hint"])
	fi, err := os.Stat(authJSON)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	codex := testenv.CodexBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, codex, "login", "status")
	cmd.Env = []string{"CODEX_HOME=" + home, "HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH"), "HTTPS_PROXY=http://127.0.0.1:9"}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "codex login status: %s", out)
	assert.Contains(t, string(out), "Logged in using ChatGPT")
}

// refreshingBottle is a codex bottle whose host login egressgate keeps
// fresh, at the stand-in's token endpoint.
type refreshingBottle struct {
	bottle         *bottle
	up             *upstream
	home, authJSON string
}

// startRefreshingBottle starts a refreshingBottle whose host logins (the
// first one included) live for life.
func startRefreshingBottle(t *testing.T, life time.Duration) refreshingBottle {
	t.Helper()
	pki := newUpstreamPKI(t, "chatgpt.com", "auth.openai.com")
	up := newUpstream(t, pki)
	up.oauth = standin.NewOAuth("acct-test-123", life)
	home := t.TempDir()
	authJSON := filepath.Join(home, "auth.json")
	require.NoError(t, os.WriteFile(authJSON, up.oauth.AuthJSON(up.oauth.Login(), time.Now()), 0o600))
	b := startBottle(t, bottleOptions{manifest: refreshManifest(up, pki), codexHome: home})
	return refreshingBottle{bottle: b, up: up, home: home, authJSON: authJSON}
}

// TestExpiredLoginRefreshedAtStart: a bottle started after its host login
// expired comes up with a fresh one when egressgate keeps it fresh.
func TestExpiredLoginRefreshedAtStart(t *testing.T) {
	pki := newUpstreamPKI(t, "chatgpt.com", "auth.openai.com")
	up := newUpstream(t, pki)
	up.oauth = standin.NewOAuth("acct-test-123", time.Hour)
	up.oauth.Now = func() time.Time { return time.Now().Add(-2 * time.Hour) } // logins from two hours ago
	home := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(home, "auth.json"), up.oauth.AuthJSON(up.oauth.Login(), time.Now().Add(-2*time.Hour)), 0o600))
	up.oauth.Now = nil
	b := startBottle(t, bottleOptions{manifest: refreshManifest(up, pki), codexHome: home})
	assert.Equal(t, 1, up.oauth.Refreshes())
	code, body := chatgptTurn(t, b.agent(t, false))
	assert.Equal(t, http.StatusOK, code, body)
}
