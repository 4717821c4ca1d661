package serve

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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

// loginEndpoint is the token endpoint as pol's auth.openai.com route
// reaches it, and a key naming where that is (to notice a change).
func loginEndpoint(pol *config.Policy) (hostlogin.Endpoint, string, error) {
	route, _ := pol.Route(codexLoginHost)
	ep, err := hostlogin.NewEndpoint(route.Upstream.Address, route.Upstream.CAPEM)
	if err != nil {
		return ep, "", fmt.Errorf("%s: %w", codexLoginHost, err)
	}
	ca := sha256.Sum256(route.Upstream.CAPEM)
	return ep, route.Upstream.Address + " ca=" + hex.EncodeToString(ca[:8]), nil
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
// asks egressgate to keep fresh, points the running ones at the token
// endpoint their bottle names now and pokes them (their file may have
// changed), and stops those no bottle asks for any more.
func (p *plane) syncRefreshers(ctx context.Context) {
	wanted := map[string]string{} // login file → the first asking bottle
	for _, pol := range p.policies() {
		login, ok := codexLogin(pol)
		if !ok {
			continue
		}
		path := login.Source.Ref
		if first, ok := wanted[path]; ok {
			// One login, one refresher: the first bottle's route says
			// where it refreshes (logged, since they may disagree).
			p.log.Debug("bottles share a Codex login; it is refreshed as the first one's auth.openai.com route says", "login", path, "bottle", pol.Name, "first", first)
			continue
		}
		wanted[path] = pol.Name
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
		if _, ok := wanted[path]; !ok {
			hr.stop()
			delete(p.refreshers, path)
		}
	}
}

// refresherFor returns the running refresher of login's file, starting
// one, and points it at the token endpoint pol's route names.
func (p *plane) refresherFor(ctx context.Context, pol *config.Policy, login config.Slot) (*hostlogin.Refresher, error) {
	ep, key, err := loginEndpoint(pol)
	if err != nil {
		return nil, err
	}
	path := login.Source.Ref
	p.refreshersMu.Lock()
	defer p.refreshersMu.Unlock()
	if hr, ok := p.refreshers[path]; ok {
		if hr.r.SetEndpoint(ep, key) {
			p.log.Info("the host login refresher follows the new auth.openai.com upstream", "login", path, "bottle", pol.Name)
		}
		return hr.r, nil
	}
	observe := func(result string) {
		if p.metrics != nil {
			p.metrics.HostLoginRefreshed(path, result)
		}
	}
	r := hostlogin.New(path, ep, p.log.With("component", "hostlogin"), p.now, observe)
	r.SetEndpoint(ep, key)
	if p.refreshers == nil {
		p.refreshers = map[string]*hostRefresher{}
	}
	runCtx, stop := context.WithCancel(ctx)
	p.refreshers[path] = &hostRefresher{r: r, stop: stop}
	// A refresh rewrites auth.json, which the file watch turns into a
	// reload like any other change of the login.
	go r.Run(runCtx, func() {})
	return r, nil
}

// slotFacts is what the plane knows of pol's slots at run time: upstream
// refusals seen by the in-process ext_proc server, and refresher states.
// It takes no lock but refreshersMu and the refreshers' own, which are
// never held across I/O, so status may call it holding mu.
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
