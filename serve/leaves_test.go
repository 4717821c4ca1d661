package serve

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const leafManifest = `name: leaves
egress:
  routes:
    - host: api.example.test
    - host: tunnel.example.test
      tls: passthrough
`

// TestLeavesRenewedOnTimer: a bottle whose files never change still gets
// new leaf certificates before the old ones expire, from the renewal
// check alone, and the renewal publishes a new generation.
func TestLeavesRenewedOnTimer(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	tp := newTestPlane(t, leafManifest, clock)
	first := tp.leafNotAfter(t, "api.example.test")
	version := tp.bottles[0].current.version()
	renewAt := tp.bottles[0].current.renewLeavesAt
	require.Equal(t, first.Add(-10*24*time.Hour), renewAt, "renewal is due ten days before expiry")

	// Before the renewal time nothing changes.
	clock.t = renewAt.Add(-time.Minute)
	tp.renewDueLeaves(context.Background())
	assert.Equal(t, first, tp.leafNotAfter(t, "api.example.test"))
	assert.Equal(t, version, tp.bottles[0].current.version())

	// From the renewal time on, a new leaf, valid 30 days from now.
	clock.t = renewAt
	tp.renewDueLeaves(context.Background())
	renewed := tp.leafNotAfter(t, "api.example.test")
	assert.Equal(t, clock.t.Add(30*24*time.Hour), renewed)
	assert.NotEqual(t, version, tp.bottles[0].current.version(), "a renewal publishes a new generation")
	assert.Equal(t, renewed.Add(-10*24*time.Hour), tp.bottles[0].current.renewLeavesAt)

	// A year of hourly checks never serves an expired leaf.
	for range 365 * 24 {
		clock.advance(leafCheckInterval)
		tp.renewDueLeaves(context.Background())
		require.True(t, clock.t.Before(tp.leafNotAfter(t, "api.example.test").Add(-9*24*time.Hour)),
			"at %s the served leaf expires within 9 days", clock.t)
	}
}

// TestLeafRenewalIgnoresABrokenManifest: renewal republishes the served
// policy; a manifest broken at that moment does not stop it.
func TestLeafRenewalIgnoresABrokenManifest(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	tp := newTestPlane(t, leafManifest, clock)
	first := tp.leafNotAfter(t, "api.example.test")
	replaceManifest(t, tp.bottles[0].manifest, "name: [broken\n")

	clock.t = tp.bottles[0].current.renewLeavesAt
	tp.renewDueLeaves(context.Background())
	assert.True(t, tp.leafNotAfter(t, "api.example.test").After(first))
	assert.Equal(t, []string{"api.example.test", "tunnel.example.test"}, routeHosts(tp.bottles[0].current.policy))
}
