package serve

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/xdsserver"
)

// hostsManifest is bottle "order" with one route per host, each bound to
// the token file named.
func hostsManifest(tokenFile string, hosts ...string) string {
	var b strings.Builder
	b.WriteString("name: order\negress:\n  routes:\n")
	for _, h := range hosts {
		fmt.Fprintf(&b, "    - host: %s\n      auth: {scheme: Bearer, token_file: %q}\n", h, tokenFile)
	}
	return b.String()
}

// fakePlane is a plane on a fake xDS server, in serve mode (slots to the
// built-in ext_proc server, recorded by the fake) or control mode (slots
// as the sidecar's snapshot), serving hostsManifest(a.token, hosts...).
// Its dir holds a.token and b.token.
func fakePlane(t *testing.T, mode string, hosts ...string) (*testPlane, *fakeXDS, string) {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"a.token", "b.token"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), []byte("token-"+f), 0o600))
	}
	fake := newFakeXDS()
	tp := newTestPlaneWith(t, hostsManifest(filepath.Join(dir, "a.token"), hosts...), &fakeClock{t: time.Now()}, func(p *plane) {
		p.xds, p.cfg.mode, p.localExtProc = fake, mode, fake.recordSlots
		if mode == "control" {
			p.localExtProc = nil
		}
	})
	return tp, fake, dir
}

// TestPublishFailureKeepsSlotsWithRoutes: when Envoy's snapshot fails to
// publish, the slots that went out before it are taken back, so the
// ext_proc server's slots and the served generation agree; when a staged
// snapshot went out first, Envoy's routes are taken back before the slots,
// so that no new route meets an old slot table on the way back either.
func TestPublishFailureKeepsSlotsWithRoutes(t *testing.T) {
	tests := []struct {
		name string
		mode string
		// newHost adds a host, so the reload publishes in two steps; the
		// staged step succeeds and the full one fails.
		newHost bool
	}{
		{"serve, one step", "serve", false},
		{"control, one step", "control", false},
		{"serve, staged then full", "serve", true},
		{"control, staged then full", "control", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp, fake, dir := fakePlane(t, tt.mode, "api.example.test")
			first := tp.bottles[0].current
			hosts := []string{"api.example.test"}
			failAt := 1
			if tt.newHost {
				hosts = append(hosts, "new.example.test")
				fake.connected["order"] = true
				failAt = 2
			}
			replaceManifest(t, tp.bottles[0].manifest, hostsManifest(filepath.Join(dir, "b.token"), hosts...))
			fake.failNth("order", failAt)
			before := len(fake.log())

			tp.reloadAll(context.Background(), "test")

			events := fake.log()[before:]
			require.True(t, slices.ContainsFunc(events, func(e string) bool { return strings.HasPrefix(e, "failed order ") }), "the routes' publish failed: %v", events)
			assert.Same(t, first, tp.bottles[0].current, "the last good generation is kept")
			assert.Same(t, first.snapshot, fake.servedTo("order"), "Envoy is served the last good routes: %v", events)
			slotsBack := "slots order " + slotSources(first.policy.Slots)
			if tt.mode == "control" {
				assert.Same(t, first.slots, fake.servedTo(xdsserver.ExtProcNode("order")), "the sidecar is served the last good slots: %v", events)
				slotsBack = "set " + xdsserver.ExtProcNode("order") + " " + snapVersion(first.slots)
			}
			assert.Equal(t, slotsBack, events[len(events)-1], "the slots go back last: %v", events)
			if tt.newHost {
				routesBack := slices.Index(events, "set order "+first.version())
				require.GreaterOrEqual(t, routesBack, 0, "the staged routes are taken back: %v", events)
				assert.Less(t, routesBack, len(events)-1, "routes go back before the slots: %v", events)
			}
			assert.Contains(t, tp.status().Bottles[0].LastReloadError, errFakeSet.Error())
		})
	}
}

// TestFirstPublishFailureWithdrawsSlots: a bottle whose first generation
// fails to reach Envoy is not served, so its sidecar is not served its
// slots either.
func TestFirstPublishFailureWithdrawsSlots(t *testing.T) {
	fake := newFakeXDS()
	fake.failNth("order", 1)
	tp := newTestPlaneWith(t, hostsManifest("/nonexistent/a.token", "api.example.test"), &fakeClock{t: time.Now()}, func(p *plane) {
		// Non-nil manifestArgs: control's first load serves what loads
		// and reports the rest, rather than failing.
		p.xds, p.cfg.mode, p.localExtProc, p.manifestArgs = fake, "control", nil, []string{}
	})
	require.Nil(t, tp.bottles[0].current)
	require.True(t, slices.ContainsFunc(fake.log(), func(e string) bool { return strings.HasPrefix(e, "failed order ") }), "the routes' publish failed: %v", fake.log())
	assert.Nil(t, fake.servedTo(xdsserver.ExtProcNode("order")), "no slots for a bottle not served: %v", fake.log())
	assert.Equal(t, "withdraw "+xdsserver.ExtProcNode("order"), fake.log()[len(fake.log())-1])
}
