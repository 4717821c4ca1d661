package serve

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/egressgate/egressgate/canary"
	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/dlp"
	"github.com/egressgate/egressgate/hostlogin"
	"github.com/egressgate/egressgate/xds"
)

// canaryFiles reads each bottle's canaries, the fake credentials
// agent-env planted in its agent's environment, from
// STATE_DIR/<bottle>/canaries.json, again whenever the file has changed.
// A missing file is no canaries; one that does not load is logged, naming
// it, and the canaries read before are kept.
type canaryFiles struct {
	dir string // the state dir, absolute: the watcher takes no other paths
	log *slog.Logger

	mu    sync.Mutex
	files map[string]*canaryFile // by bottle
}

// canaryFile is one bottle's file as last read.
type canaryFile struct {
	stamp fileStamp
	set   []dlp.Named
}

func newCanaryFiles(stateDir string, log *slog.Logger) (*canaryFiles, error) {
	dir, err := filepath.Abs(stateDir)
	if err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	return &canaryFiles{dir: dir, log: log, files: map[string]*canaryFile{}}, nil
}

// path is bottle's canary file, for the watcher; "" with no canary files
// (planes in tests).
func (f *canaryFiles) path(bottle string) string {
	if f == nil || bottle == "" {
		return ""
	}
	return canary.Path(f.dir, bottle)
}

// current returns bottle's canaries, reading the file again only when its
// stamp (size, times, inode) differs from the last read's. The stamp is
// taken before reading, so a file replaced meanwhile differs from it next
// time and is read again.
func (f *canaryFiles) current(bottle string) []dlp.Named {
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	cf := f.files[bottle]
	if cf == nil {
		// The bottle's directory, made now if agent-env has not, so that
		// the watch on the file hangs there and not on the state dir,
		// where the audit log is written with every request. Should that
		// fail, the watch still works, from further up.
		_ = os.MkdirAll(filepath.Dir(f.path(bottle)), 0o700)
		cf = &canaryFile{stamp: stampOf(f.path(bottle))}
		f.files[bottle] = cf
	} else if stamp := stampOf(f.path(bottle)); stamp != cf.stamp {
		cf.stamp = stamp
	} else {
		return cf.set
	}
	set, err := canary.Load(f.dir, bottle)
	if err != nil {
		// The error names the file and never a value.
		f.log.Error("canaries not updated: the file does not load; the ext_proc server keeps the previous ones", "bottle", bottle, "error", err)
		return cf.set
	}
	if !sameCanaries(cf.set, set) {
		f.log.Info("canaries loaded: the bottle's ext_proc server watches for them in what its agent sends", "bottle", bottle, "canaries", len(set), "file", f.path(bottle))
	}
	cf.set = set
	return set
}

// forget drops a withdrawn bottle's state.
func (f *canaryFiles) forget(bottle string) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.files, bottle)
}

func sameCanaries(a, b []dlp.Named) bool {
	return slices.EqualFunc(a, b, func(x, y dlp.Named) bool {
		return x.Name == y.Name && x.Value.Reveal() == y.Value.Reveal()
	})
}

// syncCanaries republishes, with the policy it serves, each bottle whose
// canary file has changed since its generation was built. Canaries are no
// part of the manifest: an agent-env run takes effect without a recompile,
// and even while the manifest is broken. Callers hold p.reloading.
func (p *plane) syncCanaries(ctx context.Context) {
	for _, b := range p.bottles {
		p.mu.Lock()
		c := b.current
		p.mu.Unlock()
		if c == nil || sameCanaries(c.canaries, p.cfg.canaries.current(c.policy.Name)) {
			continue
		}
		next, err := p.rebuild(ctx, b, c, p.now())
		if err != nil {
			p.log.Error("delivering the bottle's canaries failed; its ext_proc server keeps the previous ones", "bottle", c.policy.Name, "error", err)
			continue
		}
		p.log.Info("canaries delivered to the bottle's ext_proc server", "bottle", c.policy.Name, "canaries", len(next.canaries))
	}
}

// rebuild publishes c's policy again, built afresh at now (leaves due for
// renewal renewed, the current canaries), and makes it b's generation.
// Callers hold p.reloading.
func (p *plane) rebuild(ctx context.Context, b *bottle, c *compiled, now time.Time) (*compiled, error) {
	next, err := build(p.cfg, p.ca, c.policy, xds.Admitted(c.policy), now)
	if err != nil {
		return nil, err
	}
	if err := p.publish(ctx, c, next); err != nil {
		return nil, err
	}
	p.mu.Lock()
	b.current = next
	p.mu.Unlock()
	return next, nil
}

// extProcInputs are what a generation gives the built-in ext_proc server.
type extProcInputs struct {
	slots    []config.Slot
	rules    config.DLPRules
	canaries []dlp.Named
	// held are credentials serve holds besides the slots (see heldSecrets).
	held []dlp.Named
}

// extProcInputs of no generation (nil) are empty: nothing served yet.
func (c *compiled) extProcInputs() extProcInputs {
	if c == nil {
		return extProcInputs{}
	}
	return extProcInputs{slots: c.policy.Slots, rules: c.policy.DLPRules, canaries: c.canaries, held: c.held}
}

// dlpTarget is the part of an ext_proc server that takes the DLP
// scanner's inputs besides the slots (extproc.Server).
type dlpTarget interface {
	SetDLPRules(config.DLPRules)
	SetCanaries([]dlp.Named)
}

// heldTarget takes the credentials the egress holds besides the slots; only
// serve's built-in ext_proc server gets them (a sidecar never holds the
// host's refresh token).
type heldTarget interface {
	SetHeldSecrets([]dlp.Named)
}

// extProcTarget is an ext_proc server, as serve feeds the built-in one.
type extProcTarget interface {
	SetSlots([]config.Slot)
	dlpTarget
	heldTarget
}

// dlpFeed hands an ext_proc server the DLP inputs that differ from those
// it last handed: each Set rebuilds the server's scanner, which a reload
// that changes a slot alone, or nothing, should not cost.
type dlpFeed struct {
	to       dlpTarget
	mu       sync.Mutex
	sent     bool
	rules    config.DLPRules
	canaries []dlp.Named
}

func (f *dlpFeed) send(rules config.DLPRules, canaries []dlp.Named) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.sent || !reflect.DeepEqual(rules, f.rules) {
		f.to.SetDLPRules(rules)
	}
	if !f.sent || !sameCanaries(canaries, f.canaries) {
		f.to.SetCanaries(canaries)
	}
	f.sent, f.rules, f.canaries = true, rules, canaries
}

// localExtProc is serve's plane hook for its built-in ext_proc server:
// each generation's DLP inputs (when changed), then its slots.
func localExtProc(ep extProcTarget) func(bottle string, in extProcInputs) {
	feed := &dlpFeed{to: ep}
	var held []dlp.Named
	sentHeld := false
	return func(_ string, in extProcInputs) {
		feed.send(in.rules, in.canaries)
		if !sentHeld || !sameCanaries(held, in.held) {
			ep.SetHeldSecrets(in.held)
			held, sentHeld = in.held, true
		}
		ep.SetSlots(in.slots)
	}
}

// heldSecrets are the credentials serve holds for p besides its slot
// values: the host's Codex refresh token, when egressgate refreshes the
// login itself (refresh_host_credentials). A login that cannot be read
// holds none; its slot says why.
func heldSecrets(p *config.Policy) []dlp.Named {
	if !p.RefreshHostCredentials {
		return nil
	}
	var out []dlp.Named
	for _, s := range p.Slots {
		if s.Source.Kind != config.SourceCodex {
			continue
		}
		if rt, err := hostlogin.RefreshToken(s.Source.Ref); err == nil {
			out = append(out, dlp.Named{Name: s.Name + "-refresh-token", Value: rt})
		}
	}
	return out
}
