package integration

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

// BenchmarkInjectedRequests measures requests through the egress on a
// route that injects the host's credential, against a route of the same
// egress that only strips, in the same run: the per-request cost of the
// injection path (the slot lookup, the credential access log's status
// filter) as a ratio.
//
//	go test ./integration -run '^$' -bench InjectedRequests -benchtime 4000x
//
// Eight agents on keep-alive HTTP/1.1 connections share b.N requests per
// route. EGRESSGATE_BIN runs another build of egressgate (a baseline
// commit) under the same load.
func BenchmarkInjectedRequests(b *testing.B) {
	pki := newUpstreamPKI(b, testHosts...)
	up := newUpstream(b, pki)
	login := newHostLogin(b, time.Now().Add(time.Hour))
	bt := startBottle(b, bottleOptions{manifest: codexManifest(true, up, pki), codexHome: login.home})

	run := func(url string) time.Duration {
		const agents = 8
		var wg sync.WaitGroup
		start := time.Now()
		for a := range agents {
			client := bt.agent(b, false)
			wg.Go(func() {
				for i := a; i < b.N; i += agents {
					resp, err := client.Get(fmt.Sprintf(url, i))
					if err != nil {
						b.Error(err)
						return
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("GET %s: %d", url, resp.StatusCode)
						return
					}
				}
			})
		}
		wg.Wait()
		return time.Since(start)
	}
	// Warm both paths (connections, Envoy's ext_proc streams) untimed.
	run("https://chatgpt.com/backend-api/warm/%d")
	run("https://api.example.test/allowed/warm/%d")

	b.ResetTimer()
	inject := run("https://chatgpt.com/backend-api/bench/%d")
	strip := run("https://api.example.test/allowed/bench/%d")
	b.StopTimer()
	b.ReportMetric(float64(inject.Nanoseconds())/float64(b.N), "inject-ns/req")
	b.ReportMetric(float64(strip.Nanoseconds())/float64(b.N), "strip-ns/req")
	b.ReportMetric(float64(inject)/float64(strip), "inject/strip")
}
