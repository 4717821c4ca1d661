package serve

import (
	"slices"

	"github.com/egressgate/egressgate/xdsserver"
)

// rescan brings the bottles in line with the manifests control was given
// (p.manifestArgs): a manifest new to a directory becomes a bottle, loaded
// by the reload under way; a bottle whose manifest has left is withdrawn.
// Callers hold p.reloading.
func (p *plane) rescan() {
	if p.manifestArgs == nil {
		return
	}
	found, err := scanManifests(p.manifestArgs)
	if err != nil {
		// A directory that cannot be read now keeps its bottles: a
		// transient error must not withdraw them.
		p.log.Warn("cannot scan the manifest directories; keeping the bottles as they are", "error", err)
		return
	}
	p.mu.Lock()
	var kept []*bottle
	var gone []*bottle
	for _, b := range p.bottles {
		if slices.Contains(found, b.manifest) {
			kept = append(kept, b)
		} else {
			gone = append(gone, b)
		}
	}
	for _, m := range found {
		if !slices.ContainsFunc(kept, func(b *bottle) bool { return b.manifest == m }) {
			kept = append(kept, &bottle{manifest: m})
			p.log.Info("manifest added; loading it", "manifest", m)
		}
	}
	p.bottles = kept
	p.mu.Unlock()
	for _, b := range gone {
		p.withdraw(b)
	}
}

// withdraw stops serving b, whose manifest is gone.
func (p *plane) withdraw(b *bottle) {
	p.metrics.Forget(b.label())
	if b.name == "" {
		p.log.Info("manifest removed", "manifest", b.manifest)
		return
	}
	p.xds.Withdraw(b.name)
	p.xds.Withdraw(xdsserver.ExtProcNode(b.name))
	p.cfg.canaries.forget(b.name)
	if p.withdrawn != nil {
		p.withdrawn(b.name)
	}
	p.log.Info("bottle withdrawn: its manifest was removed; its tokens are revoked", "bottle", b.name, "manifest", b.manifest)
}
