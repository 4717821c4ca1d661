package serve

import (
	"fmt"
	"net"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/dlp"
	"github.com/egressgate/egressgate/pki"
	"github.com/egressgate/egressgate/slotwire"
	"github.com/egressgate/egressgate/xds"
)

// compiled is one consistent generation of a bottle: the policy, the
// snapshot for its Envoy, the canaries planted in its agent's environment,
// and the snapshot of slot values (and DLP inputs) for a split-mode
// ext_proc server. They are always replaced together.
type compiled struct {
	policy   *config.Policy
	snapshot *cache.Snapshot
	canaries []dlp.Named
	// held are the credentials serve holds besides the slot values.
	held  []dlp.Named
	slots *cache.Snapshot
	// staged, when the generation admits hosts the served one did not, is
	// the same configuration with only the already admitted hosts open on
	// the proxy listener; nil otherwise.
	staged *cache.Snapshot
	// renewLeavesAt is when the first of its leaf certificates is due for
	// renewal (pki.CA.RenewAt); zero when it holds none.
	renewLeavesAt time.Time
}

// version is the Envoy snapshot version, a hash of the Envoy resources.
func (c *compiled) version() string { return c.snapshot.GetVersion(resource.ListenerType) }

// compile loads the manifest and its credentials and translates them. It is
// the whole of steps 1–3 of DESIGN.md's data flow; a failure changes
// nothing. served is what the proxy listener admits now (nil before the
// first load).
func compile(cfg planeConfig, ca *pki.CA, manifest string, served map[string]config.TLSMode, now time.Time) (*compiled, error) {
	p, err := config.Load(manifest, config.Options{CodexHome: cfg.codexHome, Now: func() time.Time { return now }})
	if err != nil {
		return nil, err
	}
	return build(cfg, ca, p, served, now)
}

// build translates a loaded policy, with leaf certificates current at now
// and the bottle's current canaries. A leaf renewal or new canaries
// rebuild the served policy this way without re-reading the manifest, so a
// manifest broken at that moment cannot stop them.
func build(cfg planeConfig, ca *pki.CA, p *config.Policy, served map[string]config.TLSMode, now time.Time) (*compiled, error) {
	c := &compiled{policy: p, canaries: cfg.canaries.current(p.Name), held: heldSecrets(p)}
	leaves := map[string]xds.Certificate{}
	for _, r := range p.Routes {
		if r.TLS != config.Intercept {
			continue
		}
		leaf, err := ca.Leaf(r.Host, now)
		if err != nil {
			return nil, fmt.Errorf("certificate for %s: %w", r.Host, err)
		}
		leaves[r.Host] = leaf
		if at := ca.RenewAt(leaf); c.renewLeavesAt.IsZero() || at.Before(c.renewLeavesAt) {
			c.renewLeavesAt = at
		}
	}
	key, err := cfg.extProcKey(p.Name)
	if err != nil {
		return nil, err
	}
	in := xds.Input{
		Policy:         p,
		Leaves:         leaves,
		ProxyAddress:   cfg.proxyListen,
		ExtProcAddress: cfg.extProcAddr,
		ExtProcKey:     config.NewSecret(key),
		AuditKey:       config.NewSecret(auditKeyFor(cfg, p.Name)),
		SystemCAFile:   cfg.systemCAFile,
	}
	var serverCert *slotwire.Certificate
	if cfg.controlCA != nil {
		// A sidecar's ext_proc server: Envoy verifies it by the control CA,
		// and the certificate it presents travels with its slots.
		leaf, at, err := extProcServerLeaf(cfg, now)
		if err != nil {
			return nil, err
		}
		serverCert = &leaf
		in.ExtProcTrustedCA = cfg.controlCA.CertPEM()
		if c.renewLeavesAt.IsZero() || at.Before(c.renewLeavesAt) {
			c.renewLeavesAt = at
		}
	}
	if c.snapshot, err = snapshot(in); err != nil {
		return nil, err
	}
	if c.slots, err = slotwire.SlotSnapshot(p, serverCert, c.canaries); err != nil {
		return nil, err
	}
	if served != nil && admitsMore(p, served) {
		in.Admitted = served
		if c.staged, err = snapshot(in); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// extProcServerLeaf is the certificate of a sidecar's ext_proc server: the
// control CA's, naming the host Envoy dials (--extproc-address), and when
// it is due for renewal.
func extProcServerLeaf(cfg planeConfig, now time.Time) (slotwire.Certificate, time.Time, error) {
	host, _, err := net.SplitHostPort(cfg.extProcAddr)
	if err != nil {
		return slotwire.Certificate{}, time.Time{}, fmt.Errorf("ext_proc address %s: %w", cfg.extProcAddr, err)
	}
	leaf, err := cfg.controlCA.LeafFor([]string{host}, now)
	if err != nil {
		return slotwire.Certificate{}, time.Time{}, fmt.Errorf("ext_proc server certificate: %w", err)
	}
	return leaf, cfg.controlCA.RenewAt(leaf), nil
}

func snapshot(in xds.Input) (*cache.Snapshot, error) {
	res, err := xds.Translate(in)
	if err != nil {
		return nil, err
	}
	return res.Snapshot()
}

// admitsMore reports whether p opens a host (or a host in another TLS
// mode) that served does not.
func admitsMore(p *config.Policy, served map[string]config.TLSMode) bool {
	for _, r := range p.Routes {
		if mode, ok := served[r.Host]; !ok || mode != r.TLS {
			return true
		}
	}
	return false
}

func auditKeyFor(cfg planeConfig, bottle string) string {
	if cfg.auditKey == nil {
		return ""
	}
	return cfg.auditKey(bottle)
}
