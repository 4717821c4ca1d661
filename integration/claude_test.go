package integration

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestClaudeBottle: Claude Code's requests to api.anthropic.com carry the
// host's token as Bearer, and none of the agent's own credentials, whether
// sent as Authorization or as x-api-key.
func TestClaudeBottle(t *testing.T) {
	const hostToken = "sk-ant-oat01-host-held-claude-token"
	pki := newUpstreamPKI(t, "api.anthropic.com")
	up := newUpstream(t, pki)
	manifest := fmt.Sprintf(`name: itest
agent_provider:
  template: claude
  forward_host_credentials: true
  auth_token: HOST_CLAUDE_TOKEN
egress:
  routes:
    - host: api.anthropic.com
      upstream: {address: %q, ca_file: %q}
`, up.addr(), pki.caPath)
	b := startBottle(t, bottleOptions{manifest: manifest, env: []string{"HOST_CLAUDE_TOKEN=" + hostToken}})

	req, err := http.NewRequest(http.MethodPost, "https://api.anthropic.com/v1/messages", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer egressgate-placeholder-claude-oauth-token")
	req.Header.Set("X-Api-Key", "sk-ant-agent-held-key")
	resp, err := b.agent(t, true).Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	got := lastRequestTo(t, up, "/v1/messages")
	assert.Equal(t, []string{"Bearer " + hostToken}, got.Header.Values("Authorization"))
	assert.Empty(t, got.Header.Values("X-Api-Key"))
	assertNoValueContains(t, got.Header, "placeholder")
	assertNoValueContains(t, got.Header, "agent-held")
}
