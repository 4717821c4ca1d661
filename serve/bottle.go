package serve

import (
	"fmt"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/pki"
	"github.com/egressgate/egressgate/xds"
)

// compiled is one consistent generation of a bottle: the policy and the
// snapshot made from it. Both are swapped together on reload.
type compiled struct {
	policy   *config.Policy
	snapshot *cache.Snapshot
}

// version is the snapshot version, a hash of the Envoy resources.
func (c *compiled) version() string { return c.snapshot.GetVersion(resource.ListenerType) }

// compile loads the manifest and its credentials and translates them. It is
// the whole of steps 1–3 of DESIGN.md's data flow; a failure leaves nothing
// changed.
func compile(o *Options, ca *pki.CA, extProcAddr string, now time.Time) (*compiled, error) {
	p, err := config.Load(o.Manifest, config.Options{CodexHome: o.CodexHome})
	if err != nil {
		return nil, err
	}
	leaves := map[string]xds.Certificate{}
	for _, r := range p.Routes {
		if r.TLS != config.Intercept {
			continue
		}
		leaf, err := ca.Leaf(r.Host, now)
		if err != nil {
			return nil, fmt.Errorf("certificate for %s: %w", r.Host, err)
		}
		leaves[r.Host] = xds.Certificate{CertPEM: leaf.CertPEM, KeyPEM: leaf.KeyPEM}
	}
	res, err := xds.Translate(xds.Input{
		Policy:         p,
		Leaves:         leaves,
		ProxyAddress:   o.ProxyListen,
		ExtProcAddress: extProcAddr,
		SystemCAFile:   o.SystemCAFile,
	})
	if err != nil {
		return nil, err
	}
	snap, err := res.Snapshot()
	if err != nil {
		return nil, err
	}
	return &compiled{policy: p, snapshot: snap}, nil
}
