package serve

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/xdsserver"
)

// metricValue is the value of the named gauge or counter whose labels
// include want, or -1 when there is none.
func (tp *testPlane) metricValue(t *testing.T, name string, want map[string]string) float64 {
	t.Helper()
	families, err := tp.registry.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if hasLabels(m, want) {
				if m.GetCounter() != nil {
					return m.GetCounter().GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
			n++
		}
	}
	return n == len(want)
}

// TestFailedReloadKeepsLastGood: a reload whose new generation does not
// compile publishes nothing, keeps serving the last good generation, and
// says so in status and metrics.
func TestFailedReloadKeepsLastGood(t *testing.T) {
	tests := []struct {
		name     string
		manifest func(dir string) string
		want     string // in the status's error
	}{
		{"manifest does not parse", func(string) string { return "name: [broken\n" }, "invalid YAML"},
		{"route invalid", func(string) string {
			return "name: order\negress:\n  routes:\n    - host: api.example.test\n      tls: passthru\n"
		}, "passthru"},
		{"renamed bottle", func(dir string) string {
			return strings.Replace(hostsManifest(filepath.Join(dir, "b.token"), "api.example.test"), "name: order", "name: other", 1)
		}, "bottle name changed from order to other; restart egressgate to rename a bottle"},
	}
	for _, mode := range []string{"serve", "control"} {
		for _, tt := range tests {
			t.Run(mode+"/"+tt.name, func(t *testing.T) {
				tp, fake, dir := fakePlane(t, mode, "api.example.test")
				first := tp.bottles[0].current
				before := fake.log()
				require.Equal(t, float64(1), tp.metricValue(t, "egressgate_last_reload_success", map[string]string{"bottle": "order"}))

				replaceManifest(t, tp.bottles[0].manifest, tt.manifest(dir))
				tp.reloadAll(context.Background(), "test")

				assert.Same(t, first, tp.bottles[0].current, "the last good generation is kept")
				assert.Equal(t, before, fake.log(), "nothing is published: neither slots nor routes")
				assert.Same(t, first.snapshot, fake.servedTo("order"))
				st := tp.status().Bottles[0]
				assert.Equal(t, "order", st.Name)
				assert.Equal(t, first.version(), st.ConfigVersion, "status shows the served version")
				assert.Contains(t, st.LastReloadError, tt.want)
				assert.Equal(t, float64(0), tp.metricValue(t, "egressgate_last_reload_success", map[string]string{"bottle": "order"}))
				assert.Equal(t, float64(1), tp.metricValue(t, "egressgate_reloads_total", map[string]string{"bottle": "order", "result": "failure"}))
			})
		}
	}
}

// TestDuplicateBottleNameRefused: a second manifest naming a bottle that
// another manifest already serves is refused with both manifests named,
// and the first keeps serving.
func TestDuplicateBottleNameRefused(t *testing.T) {
	tp, fake, dir := fakePlane(t, "control", "api.example.test")
	// Once more on file changes: the first load stamped only the manifest,
	// so this compiles it again and stamps its token file too.
	tp.reloadAll(context.Background(), triggerFiles)
	first := tp.bottles[0].current
	second := filepath.Join(dir, "second.yaml")
	require.NoError(t, os.WriteFile(second, []byte(hostsManifest(filepath.Join(dir, "b.token"), "other.example.test")), 0o600))
	tp.addManifests([]string{second})
	before := fake.log()

	// On file changes, as a new manifest in control's directory is
	// loaded: the first bottle's files are unchanged and it is left be.
	tp.reloadAll(context.Background(), triggerFiles)

	assert.Same(t, first, tp.bottles[0].current, "the first bottle keeps its generation")
	assert.Nil(t, tp.bottles[1].current, "the duplicate is not served")
	assert.Equal(t, before, fake.log(), "nothing is published for the duplicate")
	st := tp.status()
	require.Len(t, st.Bottles, 2)
	assert.Empty(t, st.Bottles[0].LastReloadError)
	assert.Equal(t, second+": bottle name order is already used by "+tp.bottles[0].manifest, st.Bottles[1].LastReloadError)
	assert.Equal(t, float64(1), tp.metricValue(t, "egressgate_reloads_total", map[string]string{"bottle": second, "result": "failure"}))
}

// TestSlotsBeforeRoutes: every reload that changes the slots hands them to
// the ext_proc server (built in, or the sidecar's snapshot) before Envoy
// gets the routes that name them.
func TestSlotsBeforeRoutes(t *testing.T) {
	for _, mode := range []string{"serve", "control"} {
		t.Run(mode, func(t *testing.T) {
			tp, fake, dir := fakePlane(t, mode, "api.example.test")
			start := fake.log()
			first := tp.bottles[0].current
			replaceManifest(t, tp.bottles[0].manifest, hostsManifest(filepath.Join(dir, "b.token"), "api.example.test"))
			tp.reloadAll(context.Background(), "test")
			next := tp.bottles[0].current
			require.NotSame(t, first, next)

			for name, events := range map[string][]string{"first load": start, "reload": fake.log()[len(start):]} {
				c := first
				if name == "reload" {
					c = next
				}
				slots := "slots order " + slotSources(c.policy.Slots)
				if mode == "control" {
					slots = "set " + xdsserver.ExtProcNode("order") + " " + snapVersion(c.slots)
				}
				assert.Equal(t, []string{slots, "set order " + c.version()}, events, "%s: slots, then routes", name)
			}
		})
	}
}

// TestStagedBeforeAdmitted: a generation that admits a new host reaches a
// connected Envoy in two steps, the first with the host's chain, leaf and
// cluster but without its admission on the proxy listener; with no Envoy
// connected, or no new host, in one.
func TestStagedBeforeAdmitted(t *testing.T) {
	tests := []struct {
		name      string
		connected bool
		hosts     []string
		staged    bool
	}{
		{"new host, envoy connected", true, []string{"api.example.test", "keep.example.test", "new.example.test"}, true},
		{"new host, no envoy", false, []string{"api.example.test", "keep.example.test", "new.example.test"}, false},
		{"host removed", true, nil, false},
		{"same hosts, new source", true, []string{"api.example.test", "keep.example.test"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp, fake, dir := fakePlane(t, "serve", "api.example.test", "keep.example.test")
			fake.connected["order"] = tt.connected
			hosts := tt.hosts
			if hosts == nil {
				hosts = []string{"keep.example.test"}
			}
			replaceManifest(t, tp.bottles[0].manifest, hostsManifest(filepath.Join(dir, "b.token"), hosts...))
			before := len(fake.log())
			tp.reloadAll(context.Background(), "test")
			next := tp.bottles[0].current
			events := fake.log()[before:]
			var routes []string
			for _, e := range events {
				if v, ok := strings.CutPrefix(e, "set order "); ok {
					routes = append(routes, v)
				}
			}
			if !tt.staged {
				assert.Equal(t, []string{next.version()}, routes, "one step: %v", events)
				return
			}
			require.NotNil(t, next.staged)
			assert.Equal(t, []string{snapVersion(next.staged), next.version()}, routes, "staged, then admitted: %v", events)
			assert.True(t, strings.HasPrefix(events[0], "slots "), "slots first: %v", events)
			assert.Equal(t, map[string]bool{"api.example.test": true, "keep.example.test": true}, admittedBy(t, next.staged), "the staged snapshot admits only the hosts served before")
			assert.Equal(t, map[string]bool{"api.example.test": true, "keep.example.test": true, "new.example.test": true}, admittedBy(t, next.snapshot))
			assert.True(t, slices.Contains(secretNames(next.staged), "leaf/new.example.test"), "the staged snapshot holds the new host's leaf")
		})
	}
}

// admittedBy is the set of hosts a snapshot's proxy listener lets a
// CONNECT through to.
func admittedBy(t *testing.T, s *cache.Snapshot) map[string]bool {
	t.Helper()
	res, ok := s.GetResources(resource.RouteType)["proxy"]
	require.True(t, ok, "no proxy route configuration")
	out := map[string]bool{}
	for _, vh := range res.(*routev3.RouteConfiguration).GetVirtualHosts() {
		if host, ok := strings.CutPrefix(vh.GetName(), "connect/"); ok {
			out[host] = true
		}
	}
	return out
}

func secretNames(s *cache.Snapshot) []string {
	var out []string
	for name := range s.GetResources(resource.SecretType) {
		out = append(out, name)
	}
	return out
}
