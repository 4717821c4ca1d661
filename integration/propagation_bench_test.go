package integration

import (
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// BenchmarkPropagation measures how long a change on the host takes to
// reach traffic, against a baseline measured in the same run: one request
// round trip through the egress with nothing changing.
//
//	go test ./integration -run '^$' -bench Propagation -benchtime 100x
//
// Each of the b.N trials does three things: a baseline request; replacing
// the host's Codex auth.json, then timing until the upstream first sees the
// new token; and adding a route to the manifest, then timing until the new
// host is served (the route is removed again, untimed, before the next
// trial). docs/benchmarks.md records the results.
func BenchmarkPropagation(b *testing.B) {
	pki := newUpstreamPKI(b, append(testHosts, "added.example.test")...)
	up := newUpstream(b, pki)
	home := newHostLogin(b, time.Now().Add(time.Hour)).home
	dir := b.TempDir()
	base := codexManifest(true, up, pki)
	withRoute := insertRoute(base, fmt.Sprintf("    - host: added.example.test\n      upstream: {address: %q, ca_file: %q}\n", up.addr(), pki.caPath))
	bt := startBottle(b, bottleOptions{manifest: base, codexHome: home, manifestPath: filepath.Join(dir, "bottle.md")})
	client := bt.agent(b, true)

	var baseline, credential, route []time.Duration
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		mustGet(b, client, fmt.Sprintf("https://chatgpt.com/backend-api/baseline/%d", i))
		baseline = append(baseline, time.Since(start))

		login := newHostLogin(b, time.Now().Add(time.Hour+time.Duration(i+1)*time.Second))
		data := readFile(b, filepath.Join(login.home, "auth.json"))
		start = time.Now()
		replaceFile(b, filepath.Join(home, "auth.json"), data)
		for n := 0; ; n++ {
			path := fmt.Sprintf("/backend-api/cred/%d/%d", i, n)
			mustGet(b, client, "https://chatgpt.com"+path)
			if lastRequestTo(b, up, path).Header.Get("Authorization") == "Bearer "+login.accessToken {
				break
			}
			failAfter(b, start, "new credential")
		}
		credential = append(credential, time.Since(start))

		start = time.Now()
		replaceFile(b, bt.manifest, withRoute)
		for n := 0; !served(b, bt.egress, fmt.Sprintf("https://added.example.test/route/%d/%d", i, n)); n++ {
			failAfter(b, start, "new route")
		}
		route = append(route, time.Since(start))

		replaceFile(b, bt.manifest, base)
		for n := 0; served(b, bt.egress, fmt.Sprintf("https://added.example.test/gone/%d/%d", i, n)); n++ {
			failAfter(b, start, "route removal")
		}
	}
	b.StopTimer()
	report(b, "baseline", baseline, baseline)
	report(b, "credential", credential, baseline)
	report(b, "route", route, baseline)
}

// insertRoute adds route as the first entry of the manifest's routes.
func insertRoute(manifest, route string) string {
	return strings.Replace(manifest, "  routes:\n", "  routes:\n"+route, 1)
}

func mustGet(b testing.TB, c *http.Client, url string) {
	b.Helper()
	resp, err := c.Get(url)
	if err != nil {
		b.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
}

// served reports whether url answers 200 through the egress, on a fresh
// connection (a refused CONNECT closes the connection it came on).
func served(b testing.TB, e egress, url string) bool {
	b.Helper()
	c := e.agent(b, true)
	defer c.CloseIdleConnections()
	resp, err := c.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func failAfter(b testing.TB, start time.Time, what string) {
	b.Helper()
	if time.Since(start) > propagation {
		b.Fatalf("%s not served after %s", what, propagation)
	}
}

// report prints p50 and p99 in milliseconds and as multiples of the
// baseline's p50, the figure that survives a noisy machine.
func report(b *testing.B, name string, d, baseline []time.Duration) {
	p50, p99 := percentile(d, 50), percentile(d, 99)
	base := percentile(baseline, 50)
	b.ReportMetric(ms(p50), name+"-p50-ms")
	b.ReportMetric(ms(p99), name+"-p99-ms")
	if name != "baseline" {
		b.ReportMetric(float64(p99)/float64(base), name+"-p99/baseline-p50")
	}
}

func percentile(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(i-1, 0)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
