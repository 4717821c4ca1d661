package serve

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/canary"
	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/dlp"
	"github.com/egressgate/egressgate/slotwire"
	"github.com/egressgate/egressgate/xdsserver"
)

// The tests never print a canary value: they compare names, and values
// without printing them.

// extProcRecorder stands in for the built-in ext_proc server, recording
// what the plane hands it.
type extProcRecorder struct {
	mu       sync.Mutex
	slots    int
	rules    []config.DLPRules
	canaries [][]dlp.Named
	held     [][]dlp.Named
	changed  chan struct{} // closed and replaced on every call
}

func newExtProcRecorder() *extProcRecorder { return &extProcRecorder{changed: make(chan struct{})} }

func (r *extProcRecorder) record(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f()
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *extProcRecorder) SetSlots([]config.Slot) { r.record(func() { r.slots++ }) }
func (r *extProcRecorder) SetDLPRules(rules config.DLPRules) {
	r.record(func() { r.rules = append(r.rules, rules) })
}
func (r *extProcRecorder) SetCanaries(c []dlp.Named) {
	r.record(func() { r.canaries = append(r.canaries, c) })
}
func (r *extProcRecorder) SetHeldSecrets(h []dlp.Named) {
	r.record(func() { r.held = append(r.held, h) })
}

// waitCanaries waits for a SetCanaries call, the nth or a later one, whose
// canaries have the names want, and returns its index and canaries.
func (r *extProcRecorder) waitCanaries(t *testing.T, from int, want []string) (int, []dlp.Named) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		calls, changed := slices.Clone(r.canaries), r.changed
		r.mu.Unlock()
		for i := from; i < len(calls); i++ {
			if slices.Equal(canaryNames(calls[i]), want) {
				return i, calls[i]
			}
		}
		select {
		case <-changed:
		case <-deadline:
			var got [][]string
			for _, c := range calls {
				got = append(got, canaryNames(c))
			}
			require.FailNow(t, "the canaries did not reach the ext_proc server", "want %v; SetCanaries calls: %v", want, got)
		}
	}
}

func (r *extProcRecorder) calls() (slots, rules, canaries int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.slots, len(r.rules), len(r.canaries)
}

// canaryPlane is a plane of bottle "order" with its canary files in a
// state dir of its own, in serve mode (handing the recorder what the
// built-in ext_proc server gets) or control mode (the sidecar's snapshot,
// on the fake xDS server).
func canaryPlane(t *testing.T, mode string) (*testPlane, *extProcRecorder, *fakeXDS, string, *logWatch) {
	t.Helper()
	logs := newLogWatch()
	state := t.TempDir()
	token := filepath.Join(t.TempDir(), "a.token")
	require.NoError(t, os.WriteFile(token, []byte("token-a"), 0o600))
	ep, fake := newExtProcRecorder(), newFakeXDS()
	tp := newTestPlaneWith(t, orderManifest(token), &fakeClock{t: time.Now()}, func(p *plane) {
		p.log, p.xds, p.cfg.mode = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), fake, mode
		var err error
		p.cfg.canaries, err = newCanaryFiles(state, p.log)
		require.NoError(t, err)
		p.localExtProc = localExtProc(ep)
		if mode == "control" {
			p.localExtProc = nil
		}
	})
	return tp, ep, fake, state, logs
}

// logWatch is a log a test can wait on.
type logWatch struct {
	mu      sync.Mutex
	buf     []byte
	changed chan struct{} // closed and replaced on every write
}

func newLogWatch() *logWatch { return &logWatch{changed: make(chan struct{})} }

func (l *logWatch) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

func (l *logWatch) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.buf)
}

// waitFor waits for text to be logged.
func (l *logWatch) waitFor(t *testing.T, text string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		l.mu.Lock()
		found, changed := strings.Contains(string(l.buf), text), l.changed
		l.mu.Unlock()
		if found {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			require.FailNow(t, "not logged", "%q", text)
		}
	}
}

// TestCanariesWrittenAfterStartReachExtProc: agent-env runs after serve
// has started; its canaries reach the built-in ext_proc server through the
// file watch, with no restart and no reload by hand. A damaged file is
// logged by name and changes nothing; removing it takes the canaries away.
func TestCanariesWrittenAfterStartReachExtProc(t *testing.T) {
	tp, ep, _, state, logs := canaryPlane(t, "serve")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, _, got := ep.calls()
	require.Equal(t, 1, got, "the first load hands the ext_proc server its canaries (none)")
	require.NoError(t, tp.follow(ctx, nil))

	first := canary.Generate(time.Now())
	require.NoError(t, canary.Record(state, "order", first))
	i, delivered := ep.waitCanaries(t, 0, namesOf(first))
	requireSameValues(t, first, delivered)

	second := canary.Generate(time.Now().Add(time.Second))
	require.NoError(t, canary.Record(state, "order", second))
	i, _ = ep.waitCanaries(t, i+1, append(namesOf(first), namesOf(second)...))

	// A damaged file: logged, naming it; the ext_proc server keeps what it has.
	path := canary.Path(state, "order")
	slots, _, calls := ep.calls()
	require.NoError(t, os.WriteFile(path+".new", []byte(`{"version":1,"runs":[`), 0o600))
	require.NoError(t, os.Rename(path+".new", path))
	logs.waitFor(t, "canaries not updated: the file does not load")
	assert.Contains(t, logs.String(), path+" is corrupt")
	tp.reloadAll(ctx, "test") // one more reload: still nothing new is handed over
	_, _, after := ep.calls()
	assert.Equal(t, calls, after, "no SetCanaries for a damaged file")
	assert.Less(t, slots, func() int { s, _, _ := ep.calls(); return s }(), "the reload still ran")

	require.NoError(t, os.Remove(path))
	ep.waitCanaries(t, i+1, nil)

	for _, s := range []canary.Set{first, second} {
		for _, k := range s.Kinds() {
			require.False(t, strings.Contains(logs.String(), s.Value(k).Reveal()), "a canary value is in the log")
		}
	}
}

// TestCanariesDeliveredWhileManifestBroken: canaries are no part of the
// manifest, so a manifest that does not load does not hold them back; the
// served policy is published again with them.
func TestCanariesDeliveredWhileManifestBroken(t *testing.T) {
	tp, ep, _, state, logs := canaryPlane(t, "serve")
	served := tp.bottles[0].current
	replaceManifest(t, tp.bottles[0].manifest, "name: [broken\n")

	set := canary.Generate(time.Now())
	require.NoError(t, canary.Record(state, "order", set))
	tp.reloadAll(context.Background(), triggerFiles)
	ep.waitCanaries(t, 0, namesOf(set))
	assert.Contains(t, logs.String(), "reload failed; keeping the previous configuration")
	assert.Same(t, served.policy, tp.bottles[0].current.policy, "the served policy, with the new canaries")
	assert.Equal(t, served.version(), tp.bottles[0].current.version(), "Envoy's configuration is unchanged")
}

// TestCanariesInSidecarSnapshot: in control mode the canaries travel in
// the bottle's sidecar snapshot, which control publishes again when the
// file changes.
func TestCanariesInSidecarSnapshot(t *testing.T) {
	tp, _, fake, state, _ := canaryPlane(t, "control")
	node := xdsserver.ExtProcNode("order")
	before := fake.servedTo(node)
	require.Empty(t, decodeCanaries(t, before), "no file, no canaries")

	set := canary.Generate(time.Now())
	require.NoError(t, canary.Record(state, "order", set))
	tp.reloadAll(context.Background(), triggerFiles)
	after := fake.servedTo(node)
	require.NotEqual(t, snapVersion(before), snapVersion(after), "a new sidecar snapshot")
	requireSameValues(t, set, decodeCanaries(t, after))
	assert.Equal(t, tp.bottles[0].current.slots, after)

	tp.reloadAll(context.Background(), triggerFiles)
	assert.Same(t, after, fake.servedTo(node), "an unchanged file publishes nothing")
}

// TestDLPFeed: the ext_proc server's scanner is rebuilt only for inputs
// that changed, never for a slot change alone.
func TestDLPFeed(t *testing.T) {
	ep := newExtProcRecorder()
	deliver := localExtProc(ep)
	rules := config.DLPRules{Patterns: []config.DLPPattern{{Name: "codename", Literal: "BLUE-HARVEST-7"}}}
	canaries := []dlp.Named{{Name: "github-token@0123abcd", Value: config.NewSecret("ghp_not-a-real-one-0001")}}
	steps := []struct {
		in   extProcInputs
		want [3]int // SetSlots, SetDLPRules, SetCanaries calls so far
	}{
		{extProcInputs{}, [3]int{1, 1, 1}},
		{extProcInputs{slots: []config.Slot{{Name: "EGRESS_TOKEN_0"}}}, [3]int{2, 1, 1}},
		{extProcInputs{rules: rules}, [3]int{3, 2, 1}},
		{extProcInputs{rules: rules, canaries: canaries}, [3]int{4, 2, 2}},
		{extProcInputs{rules: rules, canaries: slices.Clone(canaries)}, [3]int{5, 2, 2}},
		{extProcInputs{}, [3]int{6, 3, 3}},
	}
	for i, s := range steps {
		deliver("order", s.in)
		slots, r, c := ep.calls()
		require.Equal(t, s.want, [3]int{slots, r, c}, "step %d", i)
	}
}

func namesOf(s canary.Set) []string {
	var out []string
	for _, k := range s.Kinds() {
		out = append(out, k+"@"+s.Run[:8])
	}
	return out
}

func canaryNames(ns []dlp.Named) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Name)
	}
	return out
}

// requireSameValues checks that got holds set's canaries, by name and
// value, without printing a value.
func requireSameValues(t *testing.T, set canary.Set, got []dlp.Named) {
	t.Helper()
	byName := map[string]string{}
	for _, n := range got {
		byName[n.Name] = n.Value.Reveal()
	}
	for _, k := range set.Kinds() {
		name := k + "@" + set.Run[:8]
		v, ok := byName[name]
		require.True(t, ok && v == set.Value(k).Reveal(), "%s is not delivered as recorded", name)
	}
}

func decodeCanaries(t *testing.T, snap *cache.Snapshot) []dlp.Named {
	t.Helper()
	var in slotwire.DLPInputs
	for _, r := range snap.GetResources(resource.SecretType) {
		_, err := slotwire.DecodeDLPSecret(r.(*tlsv3.Secret), &in)
		require.NoError(t, err)
	}
	return in.Canaries
}
