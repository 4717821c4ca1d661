package xdsserver

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// ackTracker follows what each node's Envoy has accepted. An ACK counts
// only for the response it answers (matched by nonce), and only for the
// resources that response carried: Envoy also sends the previous version
// with a new subscription, which acknowledges nothing new, and a version
// acknowledged for the old set of route or secret names does not mean the
// new ones have arrived.
//
// What a node holds lives as long as its streams: when its last stream
// closes it is forgotten, since the Envoy that comes back may be a new
// process holding nothing. A new stream's first request of each type says
// what the Envoy holds (its version_info is the last version it accepted;
// "" for a fresh one), and is taken at its word for the version only, with
// no names: go-control-plane (v0.14 sotw, cache.CreateWatch) sends a new
// stream every resource of the type it has, since the stream has been sent
// none, so a type with resources is acknowledged by the ACK of that
// resend. Only a type with none gets no response when the version is
// already current; its word is all there will be, and it is enough, as
// there are no names to wait for (TestReconnectResend pins this).
type ackTracker struct {
	log    *slog.Logger
	events Events

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every update
	streams map[int64]*streamState
	nodes   map[string]*nodeAcks
}

type streamState struct {
	node string
	sent map[string]delivery // by nonce, until Envoy answers it
	// asked holds the types the stream has requested: the first request
	// of each reports what the Envoy held when the stream opened.
	asked map[string]bool
}

// delivery is one response: its version and the names it carried.
type delivery struct {
	version string
	names   map[string]bool
}

type nodeAcks struct {
	want     string              // snapshot version last set
	required map[string][]string // type URL -> names that must be acknowledged at want
	got      map[string]delivery // type URL -> last acknowledged response
	rejected string              // Envoy's reason, if it NACKed since want was set
	full     string              // last version acknowledged in full
}

// Events are what the xDS server tells metrics: each response pushed to
// a node, and each ACK or NACK of one, by node and resource type (the
// short name, e.g. "Listener"). Every field must be set; they run under
// the tracker's lock, so they must be quick and must not call back.
type Events struct {
	Pushed, Acked, Rejected func(node, typ string)
}

func noEvents() Events {
	nop := func(string, string) {}
	return Events{Pushed: nop, Acked: nop, Rejected: nop}
}

func newAckTracker(log *slog.Logger) *ackTracker {
	return &ackTracker{log: log, events: noEvents(), changed: make(chan struct{}), streams: map[int64]*streamState{}, nodes: map[string]*nodeAcks{}}
}

// expect records that node should now converge on snap: every type its
// kind of client asks for (awaited), at snap's version.
func (t *ackTracker) expect(node string, snap *cache.Snapshot) {
	required := awaited(node, snap)
	want := snapshotVersion(required, snap)
	t.update(func() {
		n := t.node(node)
		n.want, n.required, n.rejected = want, required, ""
		n.refresh()
	})
}

func (t *ackTracker) onResponse(stream int64, resp *discoveryv3.DiscoveryResponse) {
	names := map[string]bool{}
	for _, a := range resp.GetResources() {
		if name := resourceName(a); name != "" {
			names[name] = true
		}
	}
	t.update(func() {
		if s, ok := t.streams[stream]; ok {
			s.sent[resp.GetNonce()] = delivery{version: resp.GetVersionInfo(), names: names}
			if s.node != "" {
				t.events.Pushed(s.node, shortType(resp.GetTypeUrl()))
			}
		}
	})
}

func (t *ackTracker) onRequest(stream int64, req *discoveryv3.DiscoveryRequest) {
	t.update(func() {
		s, ok := t.streams[stream]
		if !ok {
			s = &streamState{sent: map[string]delivery{}, asked: map[string]bool{}}
			t.streams[stream] = s
		}
		// Envoy names its node on the first message of a stream only.
		if req.GetNode().GetId() != "" {
			s.node = NodeHash{}.ID(req.GetNode())
		}
		if s.node == "" {
			return
		}
		if first := !s.asked[req.GetTypeUrl()]; first && req.GetResponseNonce() == "" {
			s.asked[req.GetTypeUrl()] = true
			t.node(s.node).resume(req.GetTypeUrl(), req.GetVersionInfo())
			return
		}
		s.asked[req.GetTypeUrl()] = true
		d, answered := s.sent[req.GetResponseNonce()]
		if !answered {
			return
		}
		delete(s.sent, req.GetResponseNonce())
		n := t.node(s.node)
		if e := req.GetErrorDetail(); e != nil {
			t.events.Rejected(s.node, shortType(req.GetTypeUrl()))
			n.rejected = fmt.Sprintf("%s: %s", shortType(req.GetTypeUrl()), e.GetMessage())
			t.log.Error("envoy rejected configuration", "node", s.node, "type", shortType(req.GetTypeUrl()), "reason", e.GetMessage())
			return
		}
		t.events.Acked(s.node, shortType(req.GetTypeUrl()))
		n.got[req.GetTypeUrl()] = d
		n.refresh()
	})
}

func (t *ackTracker) closed(stream int64) {
	t.update(func() {
		s, ok := t.streams[stream]
		delete(t.streams, stream)
		if !ok || s.node == "" {
			return
		}
		for _, other := range t.streams {
			if other.node == s.node {
				return // another stream still holds what the node holds
			}
		}
		if n, ok := t.nodes[s.node]; ok {
			n.drop()
		}
	})
}

// drop forgets what the node holds, keeping what it should converge on:
// the snapshot stays set while its Envoy is away.
func (n *nodeAcks) drop() {
	n.got, n.full = map[string]delivery{}, ""
}

// resume takes what a new stream says the node holds of typ: version,
// with no names (see ackTracker). A version other than the one
// acknowledged in full means the node no longer holds that in full.
func (n *nodeAcks) resume(typ, version string) {
	n.got[typ] = delivery{version: version, names: map[string]bool{}}
	if version != n.full {
		n.full = ""
	}
	n.refresh()
}

// forget drops node's expectations and acknowledgements.
func (t *ackTracker) forget(node string) {
	t.update(func() { delete(t.nodes, node) })
}

func (n *nodeAcks) refresh() {
	for typ, names := range n.required {
		got := n.got[typ]
		if got.version != n.want {
			return
		}
		for _, name := range names {
			if !got.names[name] {
				return
			}
		}
	}
	n.full, n.rejected = n.want, ""
}

func (t *ackTracker) node(id string) *nodeAcks {
	n, ok := t.nodes[id]
	if !ok {
		n = &nodeAcks{got: map[string]delivery{}}
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

func (t *ackTracker) connected(node string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range t.streams {
		if s.node == node {
			return true
		}
	}
	return false
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

// resourceName reads the name of a resource as sent; "" if it cannot.
func resourceName(a *anypb.Any) string {
	m, err := a.UnmarshalNew()
	if err != nil {
		return ""
	}
	return cache.GetResourceName(m)
}

func shortType(url string) string {
	for i := len(url) - 1; i >= 0; i-- {
		if url[i] == '.' {
			return url[i+1:]
		}
	}
	return url
}
