package serve

import (
	"context"
	"slices"
	"time"

	"github.com/egressgate/egressgate/watch"
)

// reloadDebounce coalesces a burst of file events (an editor's save, Codex
// replacing auth.json) into one reload. It is most of the propagation
// latency, so it is kept small.
const reloadDebounce = 20 * time.Millisecond

// triggerFiles is the reload trigger of file events.
const triggerFiles = "files changed"

// follow reloads the plane whenever a file it was compiled from changes or
// SIGHUP arrives, until ctx ends. The watched set follows the policies:
// a manifest that starts naming a new ca_file or token_file gets it watched.
func (p *plane) follow(ctx context.Context, hup <-chan struct{}) error {
	w, err := watch.New(p.log, reloadDebounce)
	if err != nil {
		return err
	}
	// The watch is armed before follow returns (and so before "ready"),
	// and one reload then picks up whatever changed between the first load
	// and the watch; it publishes nothing when nothing changed.
	p.watchInputs(w)
	p.reloadAll(ctx, "")
	go p.renewLeavesEvery(ctx, leafCheckInterval)
	go func() {
		defer w.Close()
		for {
			trigger := triggerFiles
			select {
			case <-ctx.Done():
				return
			case <-w.Changes():
			case <-hup:
				trigger = "SIGHUP"
			}
			p.reloadAll(ctx, trigger)
			// A file the policy names for the first time was not watched
			// during that reload; reload once more to see its current state.
			if p.watchInputs(w) {
				p.reloadAll(ctx, "")
			}
		}
	}()
	return nil
}

// watchInputs points w at the plane's inputs and reports whether they
// differ from the set it watched before.
func (p *plane) watchInputs(w *watch.Watcher) bool {
	files := p.inputs()
	changed := !slices.Equal(files, p.watched)
	p.watched = files
	if err := w.Set(files, manifestDirs(p.manifestArgs)...); err != nil {
		p.log.Warn("cannot watch the manifest and credential files; reload with SIGHUP", "error", err)
	}
	return changed
}

// Credentials are warned about this long before they expire, so a person
// can refresh the host login before the agent's requests are refused.
const (
	expiryWarning = 15 * time.Minute
	expiryCheck   = 30 * time.Second
)

// warnExpiry logs, once per credential value, when a slot is about to
// expire and when it has expired.
func (p *plane) warnExpiry(ctx context.Context) {
	warned := map[string]bool{}
	tick := time.NewTicker(expiryCheck)
	defer tick.Stop()
	for {
		p.checkExpiry(warned)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// checkExpiry is one look of warnExpiry, by the plane's clock; warned is
// what it has already said, by slot value, so each is said once.
func (p *plane) checkExpiry(warned map[string]bool) {
	now := p.now()
	for _, pol := range p.policies() {
		for _, s := range pol.Slots {
			if s.Expiry.IsZero() || !s.Present() {
				continue
			}
			left := s.Expiry.Sub(now)
			key := pol.Name + "/" + s.String()
			switch {
			case left <= 0 && !warned[key+"/expired"]:
				warned[key+"/expired"] = true
				p.log.Error("credential expired; requests that need it are refused with the fix", "bottle", pol.Name, "slot", s.Name, "source", s.Source.String(), "fix", s.Source.Fix())
			case left > 0 && left <= expiryWarning && !warned[key]:
				warned[key] = true
				p.log.Warn("credential expires soon", "bottle", pol.Name, "slot", s.Name, "source", s.Source.String(), "expires_in", left.Round(time.Second).String(), "fix", s.Source.Fix())
			}
		}
	}
}
