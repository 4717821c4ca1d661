package serve

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/extproc"
	"github.com/egressgate/egressgate/pki"
	"github.com/egressgate/egressgate/xds"
)

// bottle holds the generation being served and applies new ones.
type bottle struct {
	opts        *Options
	log         *slog.Logger
	ca          *pki.CA
	xds         *xds.Server
	extProc     *extproc.Server // nil when ext_proc runs elsewhere
	extProcAddr string

	mu      sync.Mutex
	current *compiled
}

// apply compiles the manifest afresh and, only if that succeeds, makes it
// the served configuration.
func (b *bottle) apply(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	next, err := compile(b.opts, b.ca, b.extProcAddr, time.Now())
	if err != nil {
		return err
	}
	if b.extProc != nil {
		b.extProc.SetSlots(next.policy.Slots)
	}
	if err := b.xds.SetSnapshot(ctx, next.policy.Name, next.snapshot); err != nil {
		return err
	}
	b.current = next
	logSlots(b.log, next.policy)
	return nil
}

// logSlots reports each slot's state at load time, so a missing credential
// shows up in the log before the agent trips over it.
func logSlots(log *slog.Logger, p *config.Policy) {
	now := time.Now()
	for _, s := range p.Slots {
		switch {
		case !s.Present():
			log.Warn("credential slot is empty", "slot", s.Name, "source", s.Source.String(), "fix", s.Source.Fix())
		case s.Expired(now):
			log.Warn("credential has expired", "slot", s.Name, "source", s.Source.String(), "fix", s.Source.Fix())
		default:
			log.Info("credential slot loaded", "slot", s.String(), "source", s.Source.String())
		}
	}
}
