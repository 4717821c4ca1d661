package serve

import (
	"context"
	"fmt"
	"time"

	"github.com/egressgate/egressgate/admin"
	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/hostlogin"
)

// codexLoginHost is where the host login refresher sends its refresh: the
// codex template's auth.openai.com route, whose upstream the manifest may
// point elsewhere (a mirror, a test's stand-in).
const codexLoginHost = "auth.openai.com"

// hostRefresher is one running host login refresher.
type hostRefresher struct {
	r    *hostlogin.Refresher
	stop context.CancelFunc
}

// codexLogin returns the slot holding p's forwarded Codex login, if p asks
// egressgate to keep it fresh.
func codexLogin(p *config.Policy) (config.Slot, bool) {
	if !p.RefreshHostCredentials {
		return config.Slot{}, false
	}
	for _, s := range p.Slots {
		if s.Source.Kind == config.SourceCodex {
			return s, true
		}
	}
	return config.Slot{}, false
}

// newRefresher makes the refresher for p's Codex login, talking to the
// token endpoint as p's auth.openai.com route reaches it.
func (p *plane) newRefresher(pol *config.Policy, login config.Slot) (*hostlogin.Refresher, error) {
	route, _ := pol.Route(codexLoginHost)
	ep, err := hostlogin.NewEndpoint(route.Upstream.Address, route.Upstream.CAPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", codexLoginHost, err)
	}
	path := login.Source.Ref
	observe := func(result string) {
		if p.metrics != nil {
			p.metrics.HostLoginRefreshed(path, result)
		}
	}
	return hostlogin.New(path, ep, p.log.With("component", "hostlogin"), p.now, observe), nil
}

// refreshBeforeStart refreshes p's Codex login once, before the first
// load is judged, when egressgate is to keep it fresh and it is due: a
// bottle started after its login expired comes up with a fresh one
// instead of refusing to start. It reports whether the file changed.
func (p *plane) refreshBeforeStart(ctx context.Context, pol *config.Policy) (bool, error) {
	login, ok := codexLogin(pol)
	if !ok || login.LoggedOut() {
		return false, nil
	}
	r, err := p.refresherFor(ctx, pol, login)
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return r.Refresh(ctx)
}

// syncRefreshers starts a refresher for each Codex login a served bottle
// asks egressgate to keep fresh, pokes the running ones (their file may
// have changed) and stops those no bottle asks for any more.
func (p *plane) syncRefreshers(ctx context.Context) {
	wanted := map[string]bool{}
	for _, pol := range p.policies() {
		login, ok := codexLogin(pol)
		if !ok {
			continue
		}
		wanted[login.Source.Ref] = true
		r, err := p.refresherFor(ctx, pol, login)
		if err != nil {
			p.log.Error("cannot keep the host's Codex login fresh", "bottle", pol.Name, "error", err)
			continue
		}
		r.Poke()
	}
	p.refreshersMu.Lock()
	defer p.refreshersMu.Unlock()
	for path, hr := range p.refreshers {
		if !wanted[path] {
			hr.stop()
			delete(p.refreshers, path)
		}
	}
}

// refresherFor returns the running refresher of login's file, starting one.
func (p *plane) refresherFor(ctx context.Context, pol *config.Policy, login config.Slot) (*hostlogin.Refresher, error) {
	p.refreshersMu.Lock()
	defer p.refreshersMu.Unlock()
	if hr, ok := p.refreshers[login.Source.Ref]; ok {
		return hr.r, nil
	}
	r, err := p.newRefresher(pol, login)
	if err != nil {
		return nil, err
	}
	if p.refreshers == nil {
		p.refreshers = map[string]*hostRefresher{}
	}
	runCtx, stop := context.WithCancel(ctx)
	p.refreshers[login.Source.Ref] = &hostRefresher{r: r, stop: stop}
	// A refresh rewrites auth.json, which the file watch turns into a
	// reload like any other change of the login.
	go r.Run(runCtx, func() {})
	return r, nil
}

// slotFacts is what the plane knows of pol's slots at run time: upstream
// refusals seen by the in-process ext_proc server, and refresher states.
// It takes no lock but refreshersMu, so status may call it holding mu.
func (p *plane) slotFacts(pol *config.Policy) map[string]admin.SlotFacts {
	facts := map[string]admin.SlotFacts{}
	if p.rejections != nil {
		facts = rejectionFacts(p.rejections(pol.Name))
	}
	if login, ok := codexLogin(pol); ok {
		p.refreshersMu.Lock()
		hr := p.refreshers[login.Source.Ref]
		p.refreshersMu.Unlock()
		if hr != nil {
			st := hr.r.State()
			f := facts[login.Name]
			f.Refresh = &st
			facts[login.Name] = f
		}
	}
	return facts
}

// recoverLogin asks the refresher of the Codex login held in slot, when
// egressgate keeps it fresh, to refresh now: its upstream has just
// rejected the access token, which may be revoked while the login holds.
func (p *plane) recoverLogin(slot string) {
	for _, pol := range p.policies() {
		login, ok := codexLogin(pol)
		if !ok || login.Name != slot {
			continue
		}
		p.refreshersMu.Lock()
		hr := p.refreshers[login.Source.Ref]
		p.refreshersMu.Unlock()
		if hr != nil {
			p.log.Info("the host's Codex login was rejected upstream; refreshing it now", "bottle", pol.Name, "slot", slot)
			hr.r.Recover()
		}
	}
}
