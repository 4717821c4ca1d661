package serve

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/egressgate/egressgate/internal/testenv"
	"github.com/egressgate/egressgate/xdsserver"
)

// orderManifest binds its one slot to the token file named.
func orderManifest(tokenFile string) string {
	return fmt.Sprintf(`name: order
egress:
  routes:
    - host: api.example.test
      auth: {scheme: Bearer, token_file: %s}
`, tokenFile)
}

// TestControlSlotsBeforeRoutes: in control mode, a reload that binds a
// slot to a new source publishes the sidecar's slots, waits for its ACK,
// and only then gives Envoy the routes naming the new source; a sidecar
// that does not answer, or is not there, delays the routes by a bounded
// wait at most, and a new value alone (a rotation) waits for nothing.
func TestControlSlotsBeforeRoutes(t *testing.T) {
	tests := []struct {
		name string
		// hold runs before the sidecar ACKs its nth response (from 0);
		// nil: no sidecar connects.
		hold func(ctx context.Context, n int)
		// rotate changes the slot's value, not its source.
		rotate bool
		// want is the warning the reload logs; "" none.
		want string
	}{{
		name: "slow sidecar: the routes wait for its ACK",
		hold: func(ctx context.Context, n int) {
			// A sidecar slow to take its slots: the plane's wait is what
			// orders the events, this delay only makes a missing wait
			// show as Envoy's update arriving first.
			if n > 0 {
				select {
				case <-time.After(300 * time.Millisecond):
				case <-ctx.Done():
				}
			}
		},
	}, {
		name: "stuck sidecar: the routes go out after the bounded wait",
		hold: func(ctx context.Context, n int) {
			if n > 0 {
				<-ctx.Done()
			}
		},
		want: "ext_proc sidecar did not confirm the new slots",
	}, {
		name: "no sidecar: the routes go out at once",
		want: "no ext_proc sidecar connected",
	}, {
		name: "rotation: a new value alone waits for nothing",
		hold: func(ctx context.Context, n int) {
			if n > 0 {
				<-ctx.Done()
			}
		},
		rotate: true,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var logs testenv.Buffer
			dir := t.TempDir()
			writeToken := func(file, value string) {
				require.NoError(t, os.WriteFile(filepath.Join(dir, file), []byte(value), 0o600))
			}
			writeToken("a.token", "token-a")
			writeToken("b.token", "token-b")
			tp := newTestPlaneWith(t, orderManifest(filepath.Join(dir, "a.token")), &fakeClock{t: time.Now()}, func(p *plane) {
				p.cfg.mode, p.localExtProc, p.log = "control", nil, testenv.Logger(&logs)
			})
			conn := serveXDS(t, tp.server)
			events := &orderLog{changed: make(chan struct{})}
			envoy := &adsPeer{name: "envoy", node: &corev3.Node{Id: "order"}, typ: resource.ListenerType, log: events}
			go envoy.run(ctx, conn)
			first := tp.bottles[0].current
			events.waitFor(t, "envoy got "+first.version())
			if tt.hold != nil {
				sidecar := &adsPeer{name: "sidecar", node: &corev3.Node{Id: "order", Cluster: xdsserver.ExtProcCluster}, typ: resource.SecretType, hold: tt.hold, log: events}
				go sidecar.run(ctx, conn)
				events.waitFor(t, "sidecar acked "+first.slots.GetVersion(resource.SecretType))
			}

			if tt.rotate {
				writeToken("a.token", "token-a-rotated")
			} else {
				replaceManifest(t, tp.bottles[0].manifest, orderManifest(filepath.Join(dir, "b.token")))
			}
			tp.reloadAll(ctx, "test")
			next := tp.bottles[0].current
			require.NotEqual(t, first.slots.GetVersion(resource.SecretType), next.slots.GetVersion(resource.SecretType), "the slots changed")

			if tt.want == "" {
				assert.NotContains(t, logs.String(), "sidecar", "no warning about the sidecar")
			} else {
				assert.Contains(t, logs.String(), tt.want)
			}
			if tt.rotate {
				require.Equal(t, first.version(), next.version(), "a rotation leaves Envoy's routes as they are")
				return
			}
			require.NotEqual(t, first.version(), next.version(), "the routes name the new source")
			gotRoutes := events.waitFor(t, "envoy got "+next.version())
			if tt.name == "slow sidecar: the routes wait for its ACK" {
				acked := events.waitFor(t, "sidecar acked "+next.slots.GetVersion(resource.SecretType))
				require.Less(t, acked, gotRoutes, "the sidecar took its slots before Envoy its routes: %v", events.all())
			}
		})
	}
}

// serveXDS serves x on a loopback port and returns a connection to it.
func serveXDS(t *testing.T, x *xdsserver.Server) *grpc.ClientConn {
	return testenv.ServeGRPC(t, x.Register)
}

// adsPeer is a light ADS client subscribed to one type as a wildcard, as
// Envoy is to listeners and the sidecar to secrets. It records each
// response it gets and each ACK it sends, in one order shared with the
// other peers.
type adsPeer struct {
	name string
	node *corev3.Node
	typ  string
	hold func(ctx context.Context, n int) // before ACKing the nth response; nil: at once
	log  *orderLog
}

func (c *adsPeer) run(ctx context.Context, conn *grpc.ClientConn) {
	s, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx, grpc.WaitForReady(true))
	if err != nil {
		return
	}
	if s.Send(&discoveryv3.DiscoveryRequest{Node: c.node, TypeUrl: c.typ}) != nil {
		return
	}
	for n := 0; ; n++ {
		resp, err := s.Recv()
		if err != nil {
			return
		}
		c.log.add(c.name + " got " + resp.GetVersionInfo())
		if c.hold != nil {
			c.hold(ctx, n)
		}
		// Recorded before it is sent, so a wait that ends on this ACK
		// comes after it in the order.
		c.log.add(c.name + " acked " + resp.GetVersionInfo())
		if s.Send(&discoveryv3.DiscoveryRequest{TypeUrl: c.typ, VersionInfo: resp.GetVersionInfo(), ResponseNonce: resp.GetNonce()}) != nil {
			return
		}
	}
}

// orderLog is the order in which the peers saw things happen.
type orderLog struct {
	mu      sync.Mutex
	events  []string
	changed chan struct{} // closed and replaced on every event
}

func (l *orderLog) add(e string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *orderLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

// waitFor returns the position of event e, waiting for it a while.
func (l *orderLog) waitFor(t *testing.T, e string) int {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		l.mu.Lock()
		i, changed := slices.Index(l.events, e), l.changed
		l.mu.Unlock()
		if i >= 0 {
			return i
		}
		select {
		case <-changed:
		case <-deadline:
			require.FailNow(t, "event did not happen", "%s; events: %v", e, l.all())
		}
	}
}
