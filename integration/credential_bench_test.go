package integration

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/egressgate/egressgate/internal/procstat"
)

// BenchmarkInjectedRequests measures requests through the egress on a
// route that injects the host's credential, against a route of the same
// egress that only strips, in the same run: the per-request cost of the
// injection path (the slot lookup, the credential access log's status
// filter) as a ratio, in wall time and in the CPU time egressgate and its
// Envoy spend (from /proc, steadier than wall time on a busy machine).
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

	clients := agentClients(b, bt.egress, 8)
	run := func(url string) time.Duration {
		return agentLoad(b, clients, b.N, func(c *http.Client, i int) (*http.Response, error) { return c.Get(fmt.Sprintf(url, i)) })
	}
	// Warm both paths (connections, Envoy's ext_proc streams) untimed.
	run("https://chatgpt.com/backend-api/warm/%d")
	run("https://api.example.test/allowed/warm/%d")

	pids := []int{bt.cmd.Process.Pid, bt.envoyPID(b)}
	b.ResetTimer()
	cpu0, own0 := procCPU(b, pids), procCPU(b, pids[:1])
	inject := run("https://chatgpt.com/backend-api/bench/%d")
	cpu1, own1 := procCPU(b, pids), procCPU(b, pids[:1])
	strip := run("https://api.example.test/allowed/bench/%d")
	cpu2 := procCPU(b, pids)
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(inject.Nanoseconds())/n, "inject-ns/req")
	b.ReportMetric(float64(strip.Nanoseconds())/n, "strip-ns/req")
	b.ReportMetric(float64(inject)/float64(strip), "inject/strip")
	b.ReportMetric(float64((cpu1-cpu0).Microseconds())/n, "inject-cpu-us/req")
	// egressgate's share: ext_proc, and the audit trail of each request.
	b.ReportMetric(float64((own1-own0).Microseconds())/n, "inject-egressgate-cpu-us/req")
	b.ReportMetric(float64((cpu2-cpu1).Microseconds())/n, "strip-cpu-us/req")
	b.ReportMetric(float64(cpu1-cpu0)/float64(cpu2-cpu1), "inject/strip-cpu")
}

// procCPU is the user and system CPU time the processes have used so far.
func procCPU(b testing.TB, pids []int) time.Duration {
	b.Helper()
	var total time.Duration
	for _, pid := range pids {
		cpu, err := procstat.CPUTime(pid)
		if err != nil {
			b.Fatalf("cpu of %d: %v", pid, err)
		}
		total += cpu
	}
	return total
}

// agentClients are n agents, each on its own keep-alive HTTP/1.1
// connections through the egress.
func agentClients(b testing.TB, e egress, n int) []*http.Client {
	clients := make([]*http.Client, n)
	for i := range clients {
		clients[i] = e.agent(b, false)
	}
	return clients
}

// agentLoad sends n requests spread over the clients, each client its
// share in turn, and returns how long they took. Every answer must be 200.
func agentLoad(b testing.TB, clients []*http.Client, n int, send func(c *http.Client, i int) (*http.Response, error)) time.Duration {
	var wg sync.WaitGroup
	start := time.Now()
	for a, c := range clients {
		wg.Go(func() {
			for i := a; i < n; i += len(clients) {
				resp, err := send(c, i)
				if err != nil {
					b.Error(err)
					return
				}
				// Read to the end, so the connection is kept alive.
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Errorf("%s %s: %d", resp.Request.Method, resp.Request.URL, resp.StatusCode)
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}
