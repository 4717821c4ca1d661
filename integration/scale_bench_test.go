package integration

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/egressgate/egressgate/internal/procstat"
	"github.com/egressgate/egressgate/xdsauth"
)

// BenchmarkControlScale measures one `egressgate control` serving many
// bottles (SCALE_BOTTLES, default 1000) to as many simulated Envoys and
// as many simulated ext_proc sidecars, all on loopback:
//
//	make bench-scale
//	# = go test ./integration -run '^$' -bench ControlScale -benchtime 1x -count 1 -timeout 30m
//
// It reports control's memory (VmRSS, VmHWM) with every client connected;
// the time from control's start until every bottle is served (a restart
// on an existing state dir, every client already waiting, as Envoys retry
// when control comes back); then SCALE_TRIALS (default 5) trials each of
// one bottle's manifest edited (until its Envoy has the new host, and
// checking no other client got a response) and of the token file all
// bottles share replaced (until every sidecar has the new value).
// docs/benchmarks.md records the results.
func BenchmarkControlScale(b *testing.B) {
	n, trials := envInt(b, "SCALE_BOTTLES", 1000), envInt(b, "SCALE_TRIALS", 5)
	perConn := envInt(b, "SCALE_STREAMS_PER_CONN", 1)
	loadBefore := loadAverage()
	s := newScaleSetup(b, n)

	// A first start mints every bottle's tokens: clients cannot have
	// them before. Time to "ready" on an empty state dir.
	start := time.Now()
	c := s.launch(b)
	c.waitReady(b)
	coldReady := time.Since(start)
	c.stop(b)

	envoys, sidecars := s.clients()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conns := s.connect(ctx, b, envoys, sidecars, perConn)
	defer closeAll(conns)

	start = time.Now()
	c = s.launch(b)
	defer c.stop(b)
	servedAt := waitServed(b, c, envoys, resource.ListenerType, resource.ClusterType)
	sidecarsAt := waitServed(b, c, sidecars, resource.SecretType)
	c.waitReady(b)
	mem := procMemory(b, c.pid())
	b.Logf("control restart with %d Envoys and %d sidecars waiting: every Envoy served %s after start, every sidecar %s; ready line %s (cold start %s)",
		n, n, ms3(servedAt.Sub(start)), ms3(sidecarsAt.Sub(start)), ms3(time.Since(start)), ms3(coldReady))

	var edits, editReloads, rotations, rotationReloads, editCPU, rotationCPU []time.Duration
	for i := range trials {
		// Bottles spread evenly through the directory's order, the
		// order control reloads them in.
		e := s.edit(b, c, envoys, sidecars, (2*i+1)*n/(2*trials), i)
		edits, editReloads, editCPU = append(edits, e.latency), append(editReloads, e.pass), append(editCPU, e.cpu)
		r := s.rotate(b, c, envoys, sidecars, i)
		rotations, rotationReloads, rotationCPU = append(rotations, r.latency), append(rotationReloads, r.pass), append(rotationCPU, r.cpu)
	}
	after := procMemory(b, c.pid())
	for _, cl := range slices.Concat(envoys, sidecars) {
		require.NoError(b, cl.ended(), "a client's stream ended")
	}

	b.ReportMetric(float64(mem.RSS)/1024, "rss-MB")
	b.ReportMetric(float64(after.HWM)/1024, "hwm-MB")
	b.ReportMetric(ms(servedAt.Sub(start)), "all-served-ms")
	b.ReportMetric(ms(percentile(edits, 50)), "edit-p50-ms")
	b.ReportMetric(ms(percentile(rotations, 50)), "rotation-p50-ms")
	b.Logf("scale: bottles=%d clients=%d+%d streams/conn=%d | rss=%.0fMB hwm=%.0fMB (after trials rss=%.0fMB hwm=%.0fMB) | all served %s (cold ready %s) | edit p50 %s max %s, reload pass p50 %s, control CPU p50 %s | shared rotation p50 %s max %s, reload pass p50 %s, control CPU p50 %s | trials=%d | loadavg before %s, after %s",
		n, n, n, perConn, mb(mem.RSS), mb(mem.HWM), mb(after.RSS), mb(after.HWM), ms3(servedAt.Sub(start)), ms3(coldReady),
		ms3(percentile(edits, 50)), ms3(percentile(edits, 100)), ms3(percentile(editReloads, 50)), ms3(percentile(editCPU, 50)),
		ms3(percentile(rotations, 50)), ms3(percentile(rotations, 100)), ms3(percentile(rotationReloads, 50)), ms3(percentile(rotationCPU, 50)),
		trials, loadBefore, loadAverage())
}

// scaleSetup is the bottles' manifests, one token file they all share,
// and control's state dir and addresses, kept across its restart.
type scaleSetup struct {
	n                   int
	dir, staging, state string
	shared              string // the token file every bottle's route injects
	xds, proxy          string
}

func newScaleSetup(b *testing.B, n int) *scaleSetup {
	root := b.TempDir()
	s := &scaleSetup{n: n, dir: filepath.Join(root, "manifests"), staging: filepath.Join(root, "staging"), state: filepath.Join(root, "state"),
		shared: filepath.Join(root, "shared-token"), xds: freePort(b), proxy: freePort(b)}
	for _, d := range []string{s.dir, s.staging, s.state} {
		require.NoError(b, os.MkdirAll(d, 0o700))
	}
	s.replace(b, s.shared, "shared-token-initial-"+randomHex(b))
	for i := range n {
		s.replace(b, s.manifest(i), s.manifestText(i, ""))
	}
	return s
}

func bottleName(i int) string { return fmt.Sprintf("b%04d", i) }

func (s *scaleSetup) manifest(i int) string { return filepath.Join(s.dir, bottleName(i)+".yaml") }

// manifestText is bottle i's manifest: one route injecting the shared
// token, and extra as a second route (no credential) when set.
func (s *scaleSetup) manifestText(i int, extra string) string {
	name := bottleName(i)
	text := fmt.Sprintf("name: %s\negress:\n  routes:\n    - host: %s.example.test\n      auth: {scheme: Bearer, token_file: %q}\n", name, name, s.shared)
	if extra != "" {
		text += fmt.Sprintf("    - host: %s\n", extra)
	}
	return text
}

// replace writes path atomically, from a file outside the manifest
// directory so that control sees one change, not a temporary file too.
func (s *scaleSetup) replace(b *testing.B, path, text string) {
	tmp := filepath.Join(s.staging, filepath.Base(path)+".tmp")
	require.NoError(b, os.WriteFile(tmp, []byte(text), 0o600))
	require.NoError(b, os.Rename(tmp, path))
}

func (s *scaleSetup) launch(b *testing.B) *scaleControl {
	return startScaleControl(b, "control", "--manifest", s.dir, "--state-dir", s.state, "--listen", s.xds,
		"--admin", "127.0.0.1:0", "--proxy", s.proxy, "--log-level", "debug")
}

// clients are a simulated Envoy and a simulated sidecar per bottle.
func (s *scaleSetup) clients() (envoys, sidecars []*adsClient) {
	for i := range s.n {
		envoys = append(envoys, newADSClient(&corev3.Node{Id: bottleName(i), Cluster: "egressgate"}, envoyTypes...))
		sidecars = append(sidecars, newADSClient(&corev3.Node{Id: bottleName(i), Cluster: xdsauth.ExtProcCluster}, resource.SecretType))
	}
	return envoys, sidecars
}

// connect starts every client's stream with its bottle's token for its
// role, perConn streams to a TLS connection trusting the control CA
// (Envoys and sidecars on connections of their own). The streams wait
// for control to listen.
func (s *scaleSetup) connect(ctx context.Context, b *testing.B, envoys, sidecars []*adsClient, perConn int) []*grpc.ClientConn {
	roots := x509.NewCertPool()
	require.True(b, roots.AppendCertsFromPEM([]byte(readFile(b, filepath.Join(s.state, "control-ca", "ca.pem")))))
	creds := credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	token := func(i int, role xdsauth.Role) string {
		return strings.TrimSpace(readFile(b, xdsauth.TokenPath(s.state, bottleName(i), role)))
	}
	var conns []*grpc.ClientConn
	for _, group := range []struct {
		clients []*adsClient
		role    xdsauth.Role
	}{{envoys, xdsauth.RoleEnvoy}, {sidecars, xdsauth.RoleExtProc}} {
		var conn *grpc.ClientConn
		for i, cl := range group.clients {
			if i%perConn == 0 {
				var err error
				conn, err = dialControl(s.xds, creds)
				require.NoError(b, err)
				conns = append(conns, conn)
			}
			go cl.run(ctx, conn, token(i, group.role))
		}
	}
	return conns
}

func closeAll(conns []*grpc.ClientConn) {
	for _, c := range conns {
		_ = c.Close()
	}
}

// waitServed waits until every client has had a response of each type,
// and returns when the last of them arrived.
func waitServed(b *testing.B, c *scaleControl, clients []*adsClient, types ...string) time.Time {
	var last time.Time
	eventually(b, 2*time.Minute, "every client to be served", func() bool {
		c.requireRunning(b)
		last = time.Time{}
		for _, cl := range clients {
			at, ok := cl.served(types...)
			if !ok {
				return false
			}
			if at.After(last) {
				last = at
			}
		}
		return true
	})
	return last
}

// trial is one change: latency until the clients concerned had it, pass
// until control had finished reloading for it (seen in its log, so to
// the poll's resolution), and control's CPU time over that pass.
type trial struct{ latency, pass, cpu time.Duration }

// edit adds a host to bottle k's manifest and times until its Envoy holds
// the route admitting it; no other client may get a response.
func (s *scaleSetup) edit(b *testing.B, c *scaleControl, envoys, sidecars []*adsClient, k, i int) trial {
	host := fmt.Sprintf("%s-t%d.example.test", bottleName(k), i)
	before := counts(slices.Concat(envoys, sidecars))
	cpu := procCPU(b, []int{c.pid()})
	passes := c.log.now()
	start := time.Now()
	s.replace(b, s.manifest(k), s.manifestText(k, host))
	var at time.Time
	eventually(b, propagation, "the edited bottle's Envoy to have its new host", func() bool {
		var ok bool
		at, ok = envoys[k].holds(resource.RouteType, []byte("connect/"+host))
		return ok
	})
	pass := waitReloaded(b, c, passes, 1, start)
	t := trial{latency: at.Sub(start), pass: pass, cpu: procCPU(b, []int{c.pid()}) - cpu}
	var touched []string
	for j, cl := range slices.Concat(envoys, sidecars) {
		if j != k && cl.count() != before[j] {
			touched = append(touched, cl.node.GetId()+"/"+cl.node.GetCluster())
		}
	}
	require.Empty(b, touched, "editing %s's manifest sent other bottles' clients a response", bottleName(k))
	b.Logf("edit %d (%s): its Envoy had the new host after %s; reload pass %s, control CPU %s; %d other clients untouched",
		i, bottleName(k), ms3(t.latency), ms3(t.pass), ms3(t.cpu), 2*s.n-1)
	return t
}

// rotate replaces the token file every bottle shares and times until
// every sidecar holds the new value.
func (s *scaleSetup) rotate(b *testing.B, c *scaleControl, envoys, sidecars []*adsClient, i int) trial {
	value := []byte(fmt.Sprintf("shared-token-%d-%s", i, randomHex(b)))
	before := counts(envoys)
	cpu := procCPU(b, []int{c.pid()})
	passes := c.log.now()
	start := time.Now()
	s.replace(b, s.shared, string(value))
	var last time.Time
	eventually(b, propagation, "every sidecar to have the new token", func() bool {
		last = time.Time{}
		for _, cl := range sidecars {
			at, ok := cl.holds(resource.SecretType, value)
			if !ok {
				return false
			}
			if at.After(last) {
				last = at
			}
		}
		return true
	})
	pass := waitReloaded(b, c, passes, s.n, start)
	t := trial{latency: last.Sub(start), pass: pass, cpu: procCPU(b, []int{c.pid()}) - cpu}
	pushed := 0
	for j, cl := range envoys {
		if cl.count() != before[j] {
			pushed++
		}
	}
	b.Logf("shared rotation %d: every sidecar had the new value after %s; reload pass %s, control CPU %s; %d Envoys got a response",
		i, ms3(t.latency), ms3(t.pass), ms3(t.cpu), pushed)
	return t
}

func counts(clients []*adsClient) []int {
	out := make([]int, len(clients))
	for i, cl := range clients {
		out[i] = cl.count()
	}
	return out
}

// waitReloaded waits until control has reloaded at least n bottles since
// before (a build that recompiles only changed bottles logs only theirs)
// and finished that reload (so that the next trial starts on an idle
// control plane), and returns the time since start.
func waitReloaded(b *testing.B, c *scaleControl, before reloadMark, n int, start time.Time) time.Duration {
	eventually(b, time.Minute, "control to reload every bottle", func() bool {
		c.requireRunning(b)
		now := c.log.now()
		return now.bottles >= before.bottles+n && now.cycles > before.cycles
	})
	return time.Since(start)
}

// procMemory is control's resident set now and at its peak, in kB.
func procMemory(b *testing.B, pid int) procstat.Memory {
	m, err := procstat.ReadMemory(pid)
	require.NoError(b, err)
	return m
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	require.NoError(b, err, name)
	require.Positive(b, n, name)
	return n
}

func randomHex(b *testing.B) string {
	buf := make([]byte, 8)
	_, err := rand.Read(buf)
	require.NoError(b, err)
	return hex.EncodeToString(buf)
}

func mb(kB int64) float64 { return float64(kB) / 1024 }

func ms3(d time.Duration) string { return d.Round(time.Millisecond).String() }
