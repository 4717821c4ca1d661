package serve

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/internal/standin"
)

// TestHeldSecrets: when egressgate refreshes the host's Codex login itself,
// it holds the refresh token, which the scanner must know; otherwise it
// holds none.
func TestHeldSecrets(t *testing.T) {
	o := standin.NewOAuth("acct-held", time.Hour)
	login := o.Login()
	path := filepath.Join(t.TempDir(), "auth.json")
	require.NoError(t, os.WriteFile(path, o.AuthJSON(login, time.Now()), 0o600))
	p := &config.Policy{RefreshHostCredentials: true, Slots: []config.Slot{
		{Name: "EGRESS_TOKEN_0", Source: config.Source{Kind: config.SourceCodex, Ref: path}},
		{Name: "EGRESS_TOKEN_1", Source: config.Source{Kind: config.SourceEnv, Ref: "GITHUB_TOKEN"}},
	}}
	held := heldSecrets(p)
	require.Len(t, held, 1)
	assert.Equal(t, "EGRESS_TOKEN_0-refresh-token", held[0].Name)
	assert.True(t, held[0].Value.Reveal() == login.RefreshToken, "the login's refresh token is held")

	p.RefreshHostCredentials = false
	assert.Empty(t, heldSecrets(p))
	p.RefreshHostCredentials = true
	require.NoError(t, os.Remove(path))
	assert.Empty(t, heldSecrets(p), "a login that is gone holds nothing")
}
