package serve

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/egressgate/egressgate/config"
)

// fakeXDS is an xDS server with no streams: it serves each node the last
// snapshot set for it, acknowledges at once, and records every publish
// (and, through recordSlots, every slot table handed to a built-in
// ext_proc server) in one order, so a test can read what went out before
// what. A publish can be made to fail.
type fakeXDS struct {
	mu        sync.Mutex
	events    []string
	served    map[string]*cache.Snapshot
	connected map[string]bool
	sets      map[string]int // SetSnapshot calls per node, failed ones too
	failNode  string
	failAt    int // the sets[failNode] count whose call fails; -1 none
}

var errFakeSet = errors.New("fake: set snapshot failed")

func newFakeXDS() *fakeXDS {
	return &fakeXDS{served: map[string]*cache.Snapshot{}, connected: map[string]bool{}, sets: map[string]int{}, failAt: -1}
}

// failNth makes the nth SetSnapshot for node from now on (1: the next)
// fail, leaving what node is served as it was.
func (f *fakeXDS) failNth(node string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNode, f.failAt = node, f.sets[node]+n-1
}

func (f *fakeXDS) SetSnapshot(_ context.Context, node string, snap *cache.Snapshot) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.sets[node]
	f.sets[node]++
	if node == f.failNode && n == f.failAt {
		f.events = append(f.events, "failed "+node+" "+snapVersion(snap))
		return errFakeSet
	}
	f.served[node] = snap
	f.events = append(f.events, "set "+node+" "+snapVersion(snap))
	return nil
}

func (f *fakeXDS) WaitAcked(context.Context, string) error { return nil }

func (f *fakeXDS) Connected(node string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.connected[node]
}

func (f *fakeXDS) Acked(node string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.served[node]; s != nil {
		return snapVersion(s)
	}
	return ""
}

func (f *fakeXDS) Withdraw(node string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.served, node)
	f.events = append(f.events, "withdraw "+node)
}

// recordSlots is a plane's localExtProc: the built-in ext_proc server's
// slot tables, in the same order as the publishes.
func (f *fakeXDS) recordSlots(bottle string, in extProcInputs) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, "slots "+bottle+" "+slotSources(in.slots))
}

func (f *fakeXDS) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.events)
}

func (f *fakeXDS) servedTo(node string) *cache.Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.served[node]
}

// snapVersion names a snapshot by its listeners' version (Envoy's), or its
// secrets' (a sidecar's slots).
func snapVersion(s *cache.Snapshot) string {
	if v := s.GetVersion(resource.ListenerType); v != "" {
		return v
	}
	return s.GetVersion(resource.SecretType)
}

// slotSources names a slot table by its slots' sources, never values.
func slotSources(slots []config.Slot) string {
	var out []string
	for _, s := range slots {
		out = append(out, fmt.Sprintf("%s=%s", s.Name, s.Source))
	}
	return fmt.Sprint(out)
}
