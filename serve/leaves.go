package serve

import (
	"context"
	"time"
)

// leafCheckInterval is how often the plane looks for leaf certificates due
// for renewal. Leaves are renewed ten days before they expire
// (pki.CA.RenewAt), so an hourly look leaves a wide margin, and a quiet
// bottle whose files never change still gets new leaves in time.
const leafCheckInterval = time.Hour

// renewLeavesEvery renews due leaves every interval until ctx ends.
func (p *plane) renewLeavesEvery(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			p.renewDueLeaves(ctx)
		}
	}
}

// renewDueLeaves republishes every bottle holding a leaf whose renewal
// time has come, with the same policy and fresh leaves. It does not
// re-read the manifest: a renewal is not a reload, and a manifest that is
// broken at that moment must not let a certificate expire.
func (p *plane) renewDueLeaves(ctx context.Context) {
	p.reloading.Lock()
	defer p.reloading.Unlock()
	now := p.now()
	for _, b := range p.bottles {
		p.mu.Lock()
		c := b.current
		p.mu.Unlock()
		if c == nil || c.renewLeavesAt.IsZero() || now.Before(c.renewLeavesAt) {
			continue
		}
		if err := p.renewLeaves(ctx, b, c, now); err != nil {
			p.log.Error("renewing leaf certificates failed; trying again within the hour",
				"bottle", c.policy.Name, "due", c.renewLeavesAt, "error", err)
		}
	}
}

// renewLeaves publishes c's policy again with leaves current at now.
// Callers hold p.reloading.
func (p *plane) renewLeaves(ctx context.Context, b *bottle, c *compiled, now time.Time) error {
	next, err := p.rebuild(ctx, b, c, now)
	if err != nil {
		return err
	}
	p.log.Info("leaf certificates renewed", "bottle", c.policy.Name, "version", next.version(), "next_renewal", next.renewLeavesAt)
	return nil
}
