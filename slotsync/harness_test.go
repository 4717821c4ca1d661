package slotsync

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/internal/testenv"
	"github.com/egressgate/egressgate/slotwire"
	"github.com/egressgate/egressgate/xdsauth"
	"github.com/egressgate/egressgate/xdsserver"
)

// waitTimeout bounds every wait; nothing here should take more than a
// fraction of it, even under -race.
const waitTimeout = 10 * time.Second

const bottle = "demo"

// record collects values from other goroutines and lets a test wait for one.
type record[T any] struct {
	mu      sync.Mutex
	items   []T
	changed chan struct{} // closed and replaced on every add
}

func newRecord[T any]() *record[T] { return &record[T]{changed: make(chan struct{})} }

func (r *record[T]) add(v T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.items = append(r.items, v)
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *record[T]) snapshot() ([]T, chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]T(nil), r.items...), r.changed
}

func (r *record[T]) len() int {
	items, _ := r.snapshot()
	return len(items)
}

// wait returns the index of the first item at or after from that satisfies
// ok, failing the test if none arrives in time.
func (r *record[T]) wait(t *testing.T, from int, what string, ok func(T) bool) (int, T) {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		items, changed := r.snapshot()
		for i := from; i < len(items); i++ {
			if ok(items[i]) {
				return i, items[i]
			}
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// controlPlane is a go-control-plane ADS server on a loopback port, as
// `egressgate control` runs one.
type controlPlane struct {
	addr     string
	cache    cache.SnapshotCache
	requests *record[*discoveryv3.DiscoveryRequest]
	auth     *record[[]string] // authorization metadata, one per stream
	stop     func()
}

// startControlPlane serves on addr ("127.0.0.1:0" for a fresh port) with an
// empty cache, as a restarted control plane starts. It keys snapshots with
// the control plane's own xdsserver.NodeHash, so the sidecar's snapshot is found
// under xdsserver.ExtProcNode although it shares the node id with the Envoy.
func startControlPlane(t *testing.T, addr string) *controlPlane {
	t.Helper()
	lis, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	cp := &controlPlane{
		addr:     lis.Addr().String(),
		cache:    cache.NewSnapshotCache(true, xdsserver.NodeHash{}, nil),
		requests: newRecord[*discoveryv3.DiscoveryRequest](),
		auth:     newRecord[[]string](),
	}
	ctx, cancel := context.WithCancel(context.Background())
	callbacks := serverv3.CallbackFuncs{StreamRequestFunc: func(_ int64, r *discoveryv3.DiscoveryRequest) error {
		cp.requests.add(proto.Clone(r).(*discoveryv3.DiscoveryRequest))
		return nil
	}}
	g := grpc.NewServer(grpc.StreamInterceptor(cp.recordAuth))
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(g, serverv3.NewServer(ctx, cp.cache, callbacks))
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = g.Serve(lis)
	}()
	var once sync.Once
	cp.stop = func() {
		once.Do(func() {
			g.Stop()
			cancel()
			<-served
		})
	}
	t.Cleanup(cp.stop)
	return cp
}

func (cp *controlPlane) recordAuth(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	md, _ := metadata.FromIncomingContext(ss.Context())
	cp.auth.add(md.Get("authorization"))
	return handler(srv, ss)
}

// setSlots publishes secrets as the sidecar's snapshot at version.
func (cp *controlPlane) setSlots(t *testing.T, version string, secrets ...types.Resource) {
	t.Helper()
	snap, err := cache.NewSnapshot(version, map[resource.Type][]types.Resource{resource.SecretType: secrets})
	require.NoError(t, err)
	require.NoError(t, cp.cache.SetSnapshot(context.Background(), xdsserver.ExtProcNode(bottle), snap))
}

// waitRequest waits for a request at or after from that satisfies ok.
func (cp *controlPlane) waitRequest(t *testing.T, from int, what string, ok func(*discoveryv3.DiscoveryRequest) bool) (int, *discoveryv3.DiscoveryRequest) {
	t.Helper()
	return cp.requests.wait(t, from, what, ok)
}

// slotSecrets encodes one env slot per value, in order.
func slotSecrets(t *testing.T, values ...string) []types.Resource {
	t.Helper()
	p := &config.Policy{Name: bottle}
	for i, v := range values {
		p.Slots = append(p.Slots, config.Slot{
			Name:   config.SlotName(i),
			Source: config.Source{Kind: config.SourceEnv, Ref: "TOKEN_" + config.SlotName(i)},
			Value:  config.NewSecret(v),
		})
	}
	res, err := slotwire.SlotSecrets(p)
	require.NoError(t, err)
	return res
}

// sidecar is a running Run, as `egressgate extproc` runs it.
type sidecar struct {
	slots *record[[]config.Slot]
	dlp   *record[slotwire.DLPInputs]
	logs  *testenv.Buffer
}

func startSidecar(t *testing.T, addr, token string) *sidecar {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	sc := &sidecar{slots: newRecord[[]config.Slot](), dlp: newRecord[slotwire.DLPInputs](), logs: &testenv.Buffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, conn, Options{
			Node:    &corev3.Node{Id: bottle, Cluster: xdsauth.ExtProcCluster},
			Token:   func() string { return token },
			Logger:  slog.New(slog.NewTextHandler(sc.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			OnSlots: sc.slots.add,
			OnDLP:   sc.dlp.add,
			Backoff: 10 * time.Millisecond,
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(waitTimeout):
			t.Error("Run did not return after its context ended")
		}
		require.NoError(t, conn.Close())
		if t.Failed() {
			t.Logf("sidecar log:\n%s", sc.logs.String())
		}
	})
	return sc
}

// waitValues waits for an OnSlots call at or after from whose slot values
// are want, in order.
func (sc *sidecar) waitValues(t *testing.T, from int, want ...string) int {
	t.Helper()
	i, _ := sc.slots.wait(t, from, fmt.Sprintf("slot values %q", want), func(slots []config.Slot) bool {
		return slices.Equal(values(slots), want)
	})
	return i
}

func values(slots []config.Slot) []string {
	out := make([]string, len(slots))
	for i, sl := range slots {
		out[i] = sl.Value.Reveal()
	}
	return out
}
