package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"

	"github.com/egressgate/egressgate/admin"
	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/extproc"
	"github.com/egressgate/egressgate/internal/buildinfo"
	"github.com/egressgate/egressgate/pki"
	"github.com/egressgate/egressgate/xds"
	"github.com/egressgate/egressgate/xdsserver"
)

// plane is the control plane of one or more bottles: it compiles each
// bottle's manifest, serves the result over xDS, and delivers slot values
// to the ext_proc server (in process, or over xDS to a sidecar).
type plane struct {
	cfg     planeConfig
	log     *slog.Logger
	ca      *pki.CA
	xds     xdsServer
	metrics *admin.Metrics
	// now is the plane's clock: leaf certificates and credential expiry
	// are judged by it.
	now func() time.Time
	// localExtProc hands a bottle's slots and DLP inputs to the
	// in-process ext_proc server (serve); nil in control mode, where they
	// travel over xDS.
	localExtProc func(bottle string, in extProcInputs)
	// rejections reports the upstream refusals the in-process ext_proc
	// server has seen (serve); nil in control mode, where the sidecar
	// sees them and shows them in its own status.
	rejections func(bottle string) map[string]extproc.Rejection

	// reloading serialises loads and reloads, which may wait for Envoy;
	// mu guards the bottles' fields only briefly, so status and metrics
	// never wait behind Envoy.
	reloading sync.Mutex
	mu        sync.Mutex
	bottles   []*bottle // in the order the manifests were given or found
	// manifestArgs, in control mode, are the manifest files and
	// directories given: each reload scans them again, so a manifest
	// added to a directory becomes a bottle and one removed is withdrawn.
	// Nil in serve mode, whose one bottle is fixed.
	manifestArgs []string
	// firstServed is called when a bottle's first good generation has been
	// published (control: its tokens and Envoy bootstrap), withdrawn when a
	// served bottle's manifest has gone. Callers hold p.reloading.
	firstServed func(*config.Policy) error
	withdrawn   func(name string)
	// tokenFiles are a bottle's xDS token files (control), watched so that
	// `egressgate token rotate` takes effect in the afterReload that follows.
	tokenFiles  func(name string) []string
	afterReload func()
	// watched is the file set the watcher follows; only follow's goroutine
	// touches it once following has started.
	watched []string
	// refreshers keep host Codex logins fresh, by auth.json path. Its
	// own lock, so status (under mu) can read refresher states.
	refreshersMu sync.Mutex
	refreshers   map[string]*hostRefresher
}

// xdsServer is what the plane needs of its xDS server: the real one
// (xdsserver.Server) in production, a fake in the tests of the reload
// logic, which must see the order of publishes and make them fail.
type xdsServer interface {
	// SetSnapshot makes snap the configuration of node.
	SetSnapshot(ctx context.Context, node string, snap *cache.Snapshot) error
	// WaitAcked waits until node has acknowledged its last snapshot.
	WaitAcked(ctx context.Context, node string) error
	// Connected reports whether node holds a stream.
	Connected(node string) bool
	// Acked is the snapshot version node has fully acknowledged.
	Acked(node string) string
	// Withdraw stops serving node.
	Withdraw(node string)
}

var _ xdsServer = (*xdsserver.Server)(nil)

// planeConfig is what every bottle's translation shares.
type planeConfig struct {
	mode         string // "serve" or "control"
	proxyListen  string
	extProcAddr  string
	systemCAFile string
	codexHome    string
	// extProcKey gives the caller key a bottle's Envoy presents to its
	// ext_proc server; auditKey the key it streams its audit log with
	// (nil: no audit log).
	extProcKey func(bottle string) (string, error)
	auditKey   func(bottle string) string
	// controlCA, in control mode, vouches for the sidecars' ext_proc
	// servers; nil in serve, whose ext_proc is on loopback in-process.
	controlCA *pki.CA
	// canaries are the bottles' canary files in the state dir (nil: none).
	canaries *canaryFiles
}

// bottle is one manifest and the generation of it being served.
type bottle struct {
	manifest   string
	name       string // fixed by the first good load
	current    *compiled
	lastReload time.Time
	lastErr    error
	// inputs are the stamps of the files current was compiled from, taken
	// before compiling; nil after a failure. A reload on file changes
	// skips a bottle whose files all still match, so that with a thousand
	// bottles one edit recompiles one.
	inputs map[string]fileStamp
}

func (p *plane) addManifests(manifests []string) {
	for _, m := range manifests {
		p.bottles = append(p.bottles, &bottle{manifest: m})
	}
}

// loadAll is the first load. In serve mode every bottle must compile, or
// nothing starts. In control mode a bottle that does not compile is
// reported (log, status, metrics) and the others are served: one bad
// manifest must not take every bottle's control plane down at a restart.
func (p *plane) loadAll(ctx context.Context) error {
	p.reloading.Lock()
	defer p.reloading.Unlock()
	var errs []error
	for _, b := range p.bottles {
		err := p.apply(ctx, b, "start")
		if err != nil && p.manifestArgs != nil {
			p.log.Error("bottle not served: its manifest does not load; fix it and it is picked up", "manifest", b.manifest, "error", err)
			continue
		}
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	p.syncRefreshers(ctx)
	releaseAfterBurst(len(p.bottles))
	return nil
}

// reloadAll recompiles every bottle. A bottle whose new generation fails
// keeps serving its last good one; the failure is logged, counted and shown
// in status. Each bottle's outcome is one log line, naming trigger (why
// the reload happened); with no trigger, an unchanged bottle says nothing.
func (p *plane) reloadAll(ctx context.Context, trigger string) {
	p.reloading.Lock()
	defer p.reloading.Unlock()
	p.rescan()
	// After file events only the bottles whose files changed are
	// compiled; SIGHUP (and any other trigger) compiles every one.
	onlyChanged := trigger == "" || trigger == triggerFiles
	compiled := 0
	defer func() { releaseAfterBurst(compiled) }()
	for _, b := range p.bottles {
		if onlyChanged && p.unchanged(b) {
			continue
		}
		compiled++
		if err := p.apply(ctx, b, trigger); err != nil {
			p.log.Error("reload failed; keeping the previous configuration", "manifest", b.manifest, "trigger", trigger, "error", err)
		}
	}
	p.syncCanaries(ctx)
	p.syncRefreshers(ctx)
	if p.afterReload != nil {
		p.afterReload()
	}
}

// burstBottles is how many bottles compiled at once make a burst worth
// handing its garbage back to the OS for.
const burstBottles = 100

// releaseAfterBurst returns the memory a burst of compiles left behind
// (a start, a shared host login rotated) to the OS at once. Without it a
// control plane with a thousand bottles keeps the burst's peak as its
// resident size for minutes, until the scavenger gets to it; with it the
// steady state is what the bottles and their streams hold. One forced
// collection per burst is cheap next to compiling a hundred bottles.
func releaseAfterBurst(compiled int) {
	if compiled >= burstBottles {
		debug.FreeOSMemory()
	}
}

// apply compiles b afresh and, only if that succeeds, serves it. Slots go
// out before routes: a new route never meets an old slot table (see
// publishSlots; the source check in extproc covers the reverse).
// Callers hold p.reloading.
func (p *plane) apply(ctx context.Context, b *bottle, trigger string) error {
	p.mu.Lock()
	current, name := b.current, b.name
	p.mu.Unlock()

	// Stamped before compiling: a file that changes while it is read
	// then differs from its stamp, and the next reload compiles again.
	stamps := stampFiles(b.inputFiles())
	next, err := p.compileChecked(ctx, b, current, name)
	if err == nil {
		err = p.publish(ctx, current, next)
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	b.lastReload = p.now()
	if err != nil {
		b.lastErr, b.inputs = err, nil
		p.metrics.ReloadFailed(b.label())
		return err
	}
	b.inputs = stamps
	for _, f := range next.policy.Inputs {
		if _, ok := stamps[f]; !ok {
			// Named for the first time: read before it was stamped, so
			// the next reload must compile again to be sure.
			stamps[f] = fileStamp{}
		}
	}
	switch {
	case current == nil || current.version() != next.version():
		p.log.Info("configuration applied", "bottle", next.policy.Name, "version", next.version(), "trigger", trigger)
	case trigger != "":
		p.log.Info("reloaded; configuration unchanged", "bottle", next.policy.Name, "version", next.version(), "trigger", trigger)
	}
	if current != nil {
		logSlotChanges(p.log, current.policy, next.policy)
	}
	b.name, b.current, b.lastErr = next.policy.Name, next, nil
	p.metrics.ReloadSucceeded(b.name)
	if current == nil && p.firstServed != nil {
		// Unlocked: the hook writes files, and status must not wait on it.
		p.mu.Unlock()
		err := p.firstServed(next.policy)
		p.mu.Lock()
		if err != nil {
			b.lastErr = err
			return err
		}
	}
	return nil
}

// nameTakenBy returns the manifest of the bottle other than b named name,
// if any. A scan rather than an index: it allocates nothing, and even a
// thousand bottles compare in microseconds.
func (p *plane) nameTakenBy(b *bottle, name string) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, other := range p.bottles {
		if other != b && other.name == name {
			return other.manifest, true
		}
	}
	return "", false
}

func (p *plane) compileChecked(ctx context.Context, b *bottle, current *compiled, name string) (*compiled, error) {
	manifest := b.manifest
	var served map[string]config.TLSMode
	if current != nil {
		served = xds.Admitted(current.policy)
	}
	next, err := compile(p.cfg, p.ca, manifest, served, p.now())
	if err != nil {
		return nil, err
	}
	if current == nil {
		if next, err = p.checkStartLogin(ctx, manifest, next); err != nil {
			return nil, err
		}
	}
	newName := next.policy.Name
	if name != "" && newName != name {
		return nil, fmt.Errorf("%s: bottle name changed from %s to %s; restart egressgate to rename a bottle", manifest, name, newName)
	}
	if other, ok := p.nameTakenBy(b, newName); ok {
		return nil, fmt.Errorf("%s: bottle name %s is already used by %s", manifest, newName, other)
	}
	return next, nil
}

// checkStartLogin refuses to start a bottle whose host login cannot work:
// starting up, that is the person's to fix first (once running, a login
// that goes away empties its slot). A login egressgate keeps fresh is
// refreshed first if it is due, and the bottle compiled again.
func (p *plane) checkStartLogin(ctx context.Context, manifest string, c *compiled) (*compiled, error) {
	changed, err := p.refreshBeforeStart(ctx, c.policy)
	if err != nil && c.policy.HostLoginError() != nil {
		return nil, fmt.Errorf("%w\n(egressgate could not refresh it: %v)", c.policy.HostLoginError(), err)
	}
	if changed {
		if c, err = compile(p.cfg, p.ca, manifest, nil, p.now()); err != nil {
			return nil, err
		}
	}
	if err := c.policy.HostLoginError(); err != nil {
		return nil, err
	}
	return c, nil
}

// publish makes c the served generation in place of current (nil at
// the first load), in an order that never lets a request meet half of
// it: slot values first (publishSlots), then (when hosts are added)
// everything but the new hosts' admission on the proxy listener, and once
// Envoy has acknowledged that, the admission itself. Otherwise a CONNECT
// to a new host could be accepted before Envoy can terminate its TLS.
//
// If Envoy's part fails to publish, current stays the served generation
// (apply keeps it), so the slots that went out ahead of it are taken back
// (rollBack): otherwise ext_proc would hold c's slot table under current's
// routes for as long as current is served, and a later generation would be
// published against slots it was never compared with. Committing the slots
// only after the routes instead would let a new route meet an old slot
// table, which is the order publishSlots exists to prevent.
func (p *plane) publish(ctx context.Context, current, c *compiled) error {
	if err := p.publishSlots(ctx, current, c); err != nil {
		return err
	}
	staged, err := p.publishRoutes(ctx, c)
	if err != nil {
		return errors.Join(err, p.rollBack(ctx, current, c, staged))
	}
	return nil
}

// publishRoutes gives the bottle's Envoy c's snapshot, staged first when
// c admits new hosts and Envoy is there to take it; staged reports whether
// the staged snapshot went out.
func (p *plane) publishRoutes(ctx context.Context, c *compiled) (staged bool, err error) {
	name := c.policy.Name
	if c.staged != nil && p.xds.Connected(name) {
		if err := p.xds.SetSnapshot(ctx, name, c.staged); err != nil {
			return false, err
		}
		staged = true
		wait, cancel := context.WithTimeout(ctx, stageTimeout)
		err := p.xds.WaitAcked(wait, name)
		cancel()
		if err != nil {
			// Publishing anyway is no worse than publishing in one step.
			p.log.Warn("envoy did not confirm the staged configuration; publishing the rest", "bottle", name, "error", err)
		}
	}
	return staged, p.xds.SetSnapshot(ctx, name, c.snapshot)
}

// rollBack returns the bottle's ext_proc server to current's slots (none
// before the first good generation) after c's routes failed to publish.
// The reverse of publish's order: a staged snapshot that went out holds c's
// routes, so Envoy gets current's back first; should that fail, c's slots
// stay, since c's routes may be served and must not meet current's slots.
func (p *plane) rollBack(ctx context.Context, current, c *compiled, staged bool) error {
	name := c.policy.Name
	if staged {
		// staged implies a current generation: staging needs one served.
		if err := p.xds.SetSnapshot(ctx, name, current.snapshot); err != nil {
			return fmt.Errorf("restoring the served routes: %w; the new slots are kept for the new routes Envoy may hold", err)
		}
	}
	if p.localExtProc != nil {
		p.localExtProc(name, current.extProcInputs())
		return nil
	}
	node := xdsserver.ExtProcNode(name)
	if current == nil {
		p.xds.Withdraw(node)
		return nil
	}
	if err := p.xds.SetSnapshot(ctx, node, current.slots); err != nil {
		return fmt.Errorf("restoring the served slots: %w", err)
	}
	return nil
}

// publishSlots hands c's slot values (and its DLP rules and canaries) to
// the bottle's ext_proc server before the routes that name them reach
// Envoy. The built-in server (serve) takes them at once. A sidecar
// (control) takes them over xDS, so when c binds a slot to a source
// current did not, the routes wait for the sidecar's ACK, bounded: a
// request on a new route would otherwise be refused by the sidecar's
// source check until the slots arrive. Never longer, and not at all with
// no sidecar connected: a missing or stuck sidecar must not hold the
// bottle's Envoy at its old routes, and the source check keeps a mismatch
// refused rather than mis-sent.
func (p *plane) publishSlots(ctx context.Context, current, c *compiled) error {
	name := c.policy.Name
	if p.localExtProc != nil {
		p.localExtProc(name, c.extProcInputs())
		return nil
	}
	node := xdsserver.ExtProcNode(name)
	if err := p.xds.SetSnapshot(ctx, node, c.slots); err != nil {
		return err
	}
	if !bindsNewSlots(current, c) {
		return nil
	}
	if !p.xds.Connected(node) {
		if current != nil {
			// At start no sidecar is connected yet, which is no news.
			p.log.Warn("no ext_proc sidecar connected to take the new slots; publishing the routes, whose requests it refuses until it has them", "bottle", name)
		}
		return nil
	}
	wait, cancel := context.WithTimeout(ctx, sidecarTimeout)
	defer cancel()
	if err := p.xds.WaitAcked(wait, node); err != nil {
		p.log.Warn("ext_proc sidecar did not confirm the new slots; publishing the routes anyway, its source check refuses what does not match", "bottle", name, "error", err)
	}
	return nil
}

// bindsNewSlots reports whether next's routes can name a slot, or a slot
// with a source, that current's did not. A new value alone (a rotation) is
// not one: the routes name the slot and its source, not the value.
func bindsNewSlots(current, next *compiled) bool {
	for _, s := range next.policy.Slots {
		if current == nil {
			return true
		}
		if before, ok := current.policy.Slot(s.Name); !ok || before.Source != s.Source {
			return true
		}
	}
	return false
}

// sidecarTimeout bounds the wait for a sidecar to take new slots; a
// healthy one takes milliseconds, and a reload must not stall on a stuck
// one.
const sidecarTimeout = 2 * time.Second

// stageTimeout bounds the wait for Envoy to take the staged configuration;
// it takes milliseconds when Envoy is healthy.
const stageTimeout = 5 * time.Second

// label names a bottle in metrics before its first good load.
func (b *bottle) label() string {
	if b.name != "" {
		return b.name
	}
	return b.manifest
}

// inputs are the files whose change triggers a reload: every file the
// served generations were compiled from, and each manifest even if it has
// never loaded.
func (p *plane) inputs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var files []string
	for _, b := range p.bottles {
		files = append(files, config.ManifestInputs(b.manifest)...)
		if b.current != nil {
			files = append(files, b.current.policy.Inputs...)
			if p.tokenFiles != nil {
				files = append(files, p.tokenFiles(b.name)...)
			}
			if f := p.cfg.canaries.path(b.name); f != "" {
				// Not a compile input: a change republishes the served
				// policy with the new canaries (syncCanaries).
				files = append(files, f)
			}
		}
	}
	slices.Sort(files)
	return slices.Compact(files)
}

// policies returns the policies being served, in bottle order.
func (p *plane) policies() []*config.Policy {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*config.Policy
	for _, b := range p.bottles {
		if b.current != nil {
			out = append(out, b.current.policy)
		}
	}
	return out
}

// status is the plane as `egressgate status` shows it; no secret can reach
// it, since it is built from names, sources and redacted slot forms only.
func (p *plane) status() admin.Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := admin.Status{Mode: p.cfg.mode, Version: buildinfo.Read().String(), CA: &admin.CAStatus{Path: p.ca.CertPath(), NotAfter: p.ca.NotAfter().UTC()}}
	for _, b := range p.bottles {
		bs := admin.BottleStatus{Name: b.name, Manifest: b.manifest, LastReload: b.lastReload}
		if b.lastErr != nil {
			bs.LastReloadError = b.lastErr.Error()
		}
		if c := b.current; c != nil {
			bs.ConfigVersion = c.version()
			bs.LeafRenewal = c.renewLeavesAt.UTC()
			bs.AckedVersion = p.xds.Acked(b.name)
			bs.EnvoyConnected = p.xds.Connected(b.name)
			bs.Routes = admin.RouteStatuses(c.policy.Routes)
			bs.Slots = admin.SlotStatuses(c.policy.Slots, p.slotFacts(c.policy), p.now())
		}
		st.Bottles = append(st.Bottles, bs)
	}
	return st
}

// envoysConnected says, per bottle, whether its Envoy holds a stream.
func (p *plane) envoysConnected() map[string]bool {
	out := map[string]bool{}
	for _, pol := range p.policies() {
		out[pol.Name] = p.xds.Connected(pol.Name)
	}
	return out
}

// slots feeds the credential metrics.
func (p *plane) slots() []admin.BottleSlots {
	var out []admin.BottleSlots
	for _, pol := range p.policies() {
		out = append(out, admin.BottleSlots{Bottle: pol.Name, Slots: pol.Slots, Facts: p.slotFacts(pol)})
	}
	return out
}

// logSlots reports each slot's state at start-up, so a missing credential
// shows up in the log before the agent trips over it.
func logSlots(log *slog.Logger, p *config.Policy) {
	now := time.Now()
	if len(p.Routes) == 0 {
		log.Warn("bottle allows no host: every request of its agent is refused", "bottle", p.Name, "manifest", p.Manifest)
	}
	for _, s := range p.Slots {
		switch {
		case !s.Present():
			log.Warn("credential slot is empty", "bottle", p.Name, "slot", s.Name, "source", s.Source.String(), "fix", s.Source.Fix())
		case s.Expired(now):
			log.Warn("credential has expired", "bottle", p.Name, "slot", s.Name, "source", s.Source.String(), "fix", s.Source.Fix())
		default:
			log.Info("credential slot loaded", "bottle", p.Name, "slot", s.String(), "source", s.Source.String())
		}
	}
}

// logSlotChanges says, once per change, when a reload gave a slot a new
// value (a host login refreshed or renewed) or took its value away (a
// logout: the slot is revoked). Values are never logged, only that they
// changed and the slots' redacted forms.
func logSlotChanges(log *slog.Logger, old, next *config.Policy) {
	for _, s := range next.Slots {
		before, ok := old.Slot(s.Name)
		switch {
		case !ok || before.Source != s.Source:
		case before.Present() && !s.Present():
			log.Warn("credential revoked: its source no longer holds one; its routes are refused",
				"bottle", next.Name, "slot", s.Name, "source", s.Source.String(), "problem", s.Problem, "fix", s.Source.Fix())
		case s.Present() && (!before.Present() || before.Value.Reveal() != s.Value.Reveal()):
			log.Info("credential rotated", "bottle", next.Name, "slot", s.String(), "source", s.Source.String())
		}
	}
}
