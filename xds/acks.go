package xds

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
)

// ackTracker follows the ACKs and NACKs Envoy sends on its ADS streams.
type ackTracker struct {
	log *slog.Logger

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every update
	streams map[int64]string
	nodes   map[string]*nodeAcks
}

type nodeAcks struct {
	want     string            // snapshot version last set
	required map[string]bool   // type URLs that must ACK want
	got      map[string]string // type URL -> last ACKed version
	rejected string            // Envoy's reason, if it NACKed want
	full     string            // last version ACKed by every required type
}

func newAckTracker(log *slog.Logger) *ackTracker {
	return &ackTracker{log: log, changed: make(chan struct{}), streams: map[int64]string{}, nodes: map[string]*nodeAcks{}}
}

func (t *ackTracker) callbacks() serverv3.Callbacks {
	return serverv3.CallbackFuncs{
		StreamRequestFunc: t.onRequest,
		StreamClosedFunc: func(id int64, _ *corev3.Node) {
			t.mu.Lock()
			delete(t.streams, id)
			t.mu.Unlock()
		},
	}
}

// expect records that node should now converge on snap. Listeners and
// clusters are always requested by Envoy; routes and secrets only when
// referenced, so only non-empty ones are awaited.
func (t *ackTracker) expect(node string, snap *cache.Snapshot) {
	required := map[string]bool{resource.ListenerType: true, resource.ClusterType: true}
	for _, typ := range []string{resource.RouteType, resource.SecretType} {
		if len(snap.GetResources(typ)) > 0 {
			required[typ] = true
		}
	}
	t.update(func() {
		n := t.node(node)
		n.want, n.required, n.rejected = snap.GetVersion(resource.ListenerType), required, ""
		n.refresh()
	})
}

func (t *ackTracker) onRequest(stream int64, req *discoveryv3.DiscoveryRequest) error {
	t.update(func() {
		// Envoy names its node on the first message of a stream only.
		if id := req.GetNode().GetId(); id != "" {
			t.streams[stream] = id
		}
		nodeID, ok := t.streams[stream]
		if !ok || req.GetResponseNonce() == "" {
			return
		}
		n := t.node(nodeID)
		if e := req.GetErrorDetail(); e != nil {
			n.rejected = fmt.Sprintf("%s: %s", shortType(req.GetTypeUrl()), e.GetMessage())
			t.log.Error("envoy rejected configuration", "node", nodeID, "type", shortType(req.GetTypeUrl()), "reason", e.GetMessage())
			return
		}
		n.got[req.GetTypeUrl()] = req.GetVersionInfo()
		n.refresh()
	})
	return nil
}

func (n *nodeAcks) refresh() {
	for typ := range n.required {
		if n.got[typ] != n.want {
			return
		}
	}
	n.full, n.rejected = n.want, ""
}

func (t *ackTracker) node(id string) *nodeAcks {
	n, ok := t.nodes[id]
	if !ok {
		n = &nodeAcks{got: map[string]string{}}
		t.nodes[id] = n
	}
	return n
}

func (t *ackTracker) update(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f()
	close(t.changed)
	t.changed = make(chan struct{})
}

func (t *ackTracker) acked(node string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if n, ok := t.nodes[node]; ok {
		return n.full
	}
	return ""
}

func (t *ackTracker) wait(ctx context.Context, node string) error {
	for {
		t.mu.Lock()
		n := t.node(node)
		done, rejected, want, changed := n.want != "" && n.full == n.want, n.rejected, n.want, t.changed
		t.mu.Unlock()
		switch {
		case done:
			return nil
		case rejected != "":
			return fmt.Errorf("envoy rejected configuration %s: %s", want, rejected)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("envoy did not acknowledge configuration %s: %w", want, context.Cause(ctx))
		}
	}
}

func shortType(url string) string {
	for i := len(url) - 1; i >= 0; i-- {
		if url[i] == '.' {
			return url[i+1:]
		}
	}
	return url
}
