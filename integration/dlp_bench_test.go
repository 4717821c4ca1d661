package integration

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/egressgate/egressgate/internal/tokengen"
)

// BenchmarkDLPBody measures the cost of outbound secret detection: 64 KiB
// JSON POSTs (the size of a Codex turn) through one egress to a host with
// DLP on (the default: the body buffered by Envoy, sent to ext_proc and
// scanned) and to a host with DLP off (headers only), in the same run,
// interleaved over rounds so load on the machine falls on both alike.
//
//	go test ./integration -run '^$' -bench DLPBody -benchtime 2000x
//
// on/off-throughput is the ratio of requests per second (issue 13's goal:
// at least 0.70); on/off-cpu the ratio of egressgate + Envoy CPU time per
// request.
func BenchmarkDLPBody(b *testing.B) {
	hosts := []string{"api.example.test", "nodlp.example.test"}
	pki := newUpstreamPKI(b, hosts...)
	up := newUpstream(b, pki)
	upstream := fmt.Sprintf("{address: %q, ca_file: %q}", up.addr(), pki.caPath)
	bt := startBottle(b, bottleOptions{env: []string{"ITEST_DLP_TOKEN=" + dlpToken}, manifest: fmt.Sprintf(`name: itest
agent_provider: {template: none}
egress:
  routes:
    - host: api.example.test
      auth: {scheme: Bearer, token_ref: ITEST_DLP_TOKEN}
      upstream: %[1]s
    - host: nodlp.example.test
      auth: {scheme: Bearer, token_ref: ITEST_DLP_TOKEN}
      dlp: {mode: off}
      upstream: %[1]s
`, upstream)})
	body := tokengen.CodexTurnBody(64<<10, "refactor the parser and keep the tests green")
	const agents = 8
	clients := agentClients(b, bt.egress, agents)
	run := func(host string, n int) time.Duration {
		return agentLoad(b, clients, n, func(c *http.Client, i int) (*http.Response, error) {
			return c.Post(fmt.Sprintf("https://%s/bench/%d", host, i), "application/json", bytes.NewReader(body))
		})
	}
	run(hosts[0], 2*agents)
	run(hosts[1], 2*agents)

	pids := []int{bt.cmd.Process.Pid, bt.envoyPID(b)}
	const rounds = 4
	per := max(b.N/rounds, agents)
	var wall, cpu, own [2]time.Duration
	b.ResetTimer()
	for range rounds {
		for i, h := range hosts {
			c0, o0 := procCPU(b, pids), procCPU(b, pids[:1])
			wall[i] += run(h, per)
			cpu[i] += procCPU(b, pids) - c0
			own[i] += procCPU(b, pids[:1]) - o0
		}
	}
	b.StopTimer()
	n := float64(rounds * per)
	b.ReportMetric(n/wall[0].Seconds(), "on-req/s")
	b.ReportMetric(n/wall[1].Seconds(), "off-req/s")
	b.ReportMetric(float64(wall[1])/float64(wall[0]), "on/off-throughput")
	b.ReportMetric(float64(cpu[0].Microseconds())/n, "on-cpu-us/req")
	b.ReportMetric(float64(cpu[1].Microseconds())/n, "off-cpu-us/req")
	b.ReportMetric(float64(cpu[0])/float64(cpu[1]), "on/off-cpu")
	// egressgate's share (ext_proc, the scan, the audit trail); the rest is
	// its Envoy's.
	b.ReportMetric(float64(own[0].Microseconds())/n, "on-egressgate-cpu-us/req")
	b.ReportMetric(float64(own[1].Microseconds())/n, "off-egressgate-cpu-us/req")
}
