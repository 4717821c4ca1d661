package integration

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// resyncTimeout fails a trial. Far above the goal (2s): Envoy's default
// xDS back-off alone reaches 30s, and the benchmark should report such a
// build's figures rather than stop at them.
const resyncTimeout = time.Minute

// defaultOutage is how long control stays down in each trial, unless
// $EGRESSGATE_RESYNC_OUTAGE says otherwise (a Go duration; 0 restarts at
// once). Envoy's and the sidecar's reconnect back-off grow with each
// failed attempt, so a restart that takes a few seconds (a container
// restarting, a deploy) is the case that exposed the delay.
const defaultOutage = 3 * time.Second

func outage(b *testing.B) time.Duration {
	b.Helper()
	v := os.Getenv("EGRESSGATE_RESYNC_OUTAGE")
	if v == "" {
		return defaultOutage
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		b.Fatalf("EGRESSGATE_RESYNC_OUTAGE: %v", err)
	}
	return d
}

// BenchmarkControlRestartResync measures how soon a split deployment
// serves a change made while `egressgate control` was down, once control
// is back. It is not part of `make test` (benchmarks only run with -bench):
//
//	make bench-resync    # go test ./integration -run '^$' -bench ControlRestartResync -benchtime 20x
//
// Each of the b.N trials stops control, then, while it is down, toggles a
// route in the manifest (adds new.example.test, or removes it again) and
// replaces the host's Codex login, keeps it down for the outage (3s, or
// $EGRESSGATE_RESYNC_OUTAGE), and starts control again on the same state
// dir and address. It times, from control's process start, until a
// request through Envoy shows the route change (Envoy re-synced) and until
// the upstream sees the new login's token (the ext_proc sidecar re-synced);
// "resync" is the later of the two. docs/benchmarks.md records the results.
func BenchmarkControlRestartResync(b *testing.B) {
	pki := newUpstreamPKI(b, append(testHosts, "new.example.test")...)
	up := newUpstream(b, pki)
	home := newHostLogin(b, time.Now().Add(time.Hour)).home
	base := codexManifest(true, up, pki)
	withRoute := insertRoute(base, fmt.Sprintf("    - host: new.example.test\n      upstream: {address: %q, ca_file: %q}\n", up.addr(), pki.caPath))
	d := startSplit(b, base, home)
	manifest := d.controlArg[2]
	down := outage(b)
	b.Logf("outage %s; load average before: %s", down, loadAverage())

	var envoySync, sidecarSync, resync []time.Duration
	b.ResetTimer()
	for i := range b.N {
		d.control.stop()
		if d.control.exitErr != nil {
			b.Fatalf("control did not stop cleanly: %v", d.control.exitErr)
		}
		added := i%2 == 0
		text := base
		if added {
			text = withRoute
		}
		replaceFile(b, manifest, text)
		login := newHostLogin(b, time.Now().Add(time.Hour+time.Duration(i+1)*time.Second))
		replaceFile(b, filepath.Join(home, "auth.json"), readFile(b, filepath.Join(login.home, "auth.json")))
		// Not synchronisation: the outage itself, during which Envoy and
		// the sidecar keep failing to reconnect and their back-off grows.
		time.Sleep(down)

		start := time.Now()
		d.control = launchControl(b, d)
		var envoyAt, sidecarAt time.Duration
		for n := 0; envoyAt == 0 || sidecarAt == 0; n++ {
			if envoyAt == 0 && served(b, d.egress, fmt.Sprintf("https://new.example.test/resync/%d/%d", i, n)) == added {
				envoyAt = time.Since(start)
			}
			if sidecarAt == 0 && injected(b, d.egress, up, fmt.Sprintf("/backend-api/resync/%d/%d", i, n), login.accessToken) {
				sidecarAt = time.Since(start)
			}
			if time.Since(start) > resyncTimeout {
				b.Fatalf("trial %d: the change made while control was down not served after %s", i, resyncTimeout)
			}
		}
		envoySync = append(envoySync, envoyAt)
		sidecarSync = append(sidecarSync, sidecarAt)
		resync = append(resync, max(envoyAt, sidecarAt))
		waitReady(b, d.control)
	}
	b.StopTimer()
	b.Logf("load average after: %s", loadAverage())
	b.Logf("resync per trial: %v", resync)
	for name, d := range map[string][]time.Duration{"envoy": envoySync, "sidecar": sidecarSync, "resync": resync} {
		b.ReportMetric(ms(percentile(d, 50)), name+"-p50-ms")
		b.ReportMetric(ms(percentile(d, 99)), name+"-p99-ms")
		b.ReportMetric(ms(percentile(d, 100)), name+"-max-ms")
	}
}

// launchControl starts control with the deployment's arguments and returns
// without waiting for it, so the trial's clock runs from its process start.
func launchControl(b *testing.B, d *splitDeployment) *bottle {
	b.Helper()
	c := &bottle{t: b, egress: egress{stateDir: d.stateDir}}
	launch(b, c, d.controlArg...)
	b.Cleanup(func() {
		c.stop()
		if b.Failed() {
			c.dumpLogs()
		}
	})
	return c
}

func waitReady(b *testing.B, c *bottle) {
	b.Helper()
	select {
	case <-c.readyCh:
	case <-c.exited:
		b.Fatalf("control exited before ready: %v", c.exitErr)
	case <-time.After(startTimeout):
		b.Fatalf("control not ready after %s", startTimeout)
	}
}

// injected reports whether a request to path on chatgpt.com reaches the
// upstream with token injected by the sidecar.
func injected(b *testing.B, e egress, up *upstream, path, token string) bool {
	b.Helper()
	c := e.agent(b, true)
	defer c.CloseIdleConnections()
	resp, err := c.Get("https://chatgpt.com" + path)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK && lastRequestTo(b, up, path).Header.Get("Authorization") == "Bearer "+token
}

// loadAverage is the machine's 1, 5 and 15 minute load, for the record.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(data))[:3], " ")
}
