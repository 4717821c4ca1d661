//go:build unix

package securefile

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestClaimDir: one claim at a time, at once rather than waiting, and
// the short LockDir still works under a claim.
func TestClaimDir(t *testing.T) {
	dir := t.TempDir()
	release, err := ClaimDir(dir)
	require.NoError(t, err)
	_, err = ClaimDir(dir)
	assert.True(t, errors.Is(err, ErrInUse), "a second claim: %v", err)

	unlock, err := LockDir(dir)
	require.NoError(t, err, "a claimant can still take the load-or-create lock")
	unlock()

	release()
	again, err := ClaimDir(dir)
	require.NoError(t, err, "released, the dir can be claimed again")
	again()
}
