// Package xds turns a Policy into Envoy resources and their snapshot: a
// pure translation. Serving the snapshot is package xdsserver's; the
// sidecar's slot snapshot is package slotwire's.
package xds

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/egressgate/egressgate/config"
)

// Input is everything translation reads. Translate is a pure function of it.
type Input struct {
	Policy *config.Policy
	// Leaves holds the certificate for every intercepted host.
	Leaves map[string]Certificate
	// ProxyAddress is where the agent-facing listener binds (host:port).
	ProxyAddress string
	// ExtProcAddress is the ext_proc gRPC server Envoy calls (host:port).
	ExtProcAddress string
	// ExtProcKey is presented on every ext_proc stream so the server
	// answers only this Envoy (extprocapi.MetadataCallerKey).
	ExtProcKey config.Secret
	// ExtProcTrustedCA, when set, makes Envoy speak TLS to the ext_proc
	// server and accept only a certificate from this CA (PEM) naming the
	// ExtProcAddress host: a sidecar across a container network.
	ExtProcTrustedCA []byte
	// AuditKey is presented on the audit log stream to the control plane
	// (xdsauth.Authority.AuditKey); empty leaves the audit log out.
	AuditKey config.Secret
	// SystemCAFile is the PEM bundle, on Envoy's file system, that verifies
	// upstreams whose route names no ca_file.
	SystemCAFile string
	// Admitted, when not nil, limits which routes the proxy listener lets
	// a CONNECT through to: only hosts listed here with the same TLS mode.
	// Everything else about every route is still built. This is how a
	// new host's listener chain, certificate and cluster reach Envoy before
	// any agent can connect to it (see serve's two-step publish).
	Admitted map[string]config.TLSMode
}

// Admitted is the set of hosts a policy lets through the proxy listener.
func Admitted(p *config.Policy) map[string]config.TLSMode {
	m := make(map[string]config.TLSMode, len(p.Routes))
	for _, r := range p.Routes {
		m[r.Host] = r.TLS
	}
	return m
}

// Resources are the Envoy resources of one bottle, each list in a
// deterministic order.
type Resources struct {
	Listeners []types.Resource
	Routes    []types.Resource
	Clusters  []types.Resource
	Secrets   []types.Resource
}

// validator is what every generated Envoy proto implements (protoc-gen-validate).
type validator interface{ ValidateAll() error }

// Translate builds the Envoy resources for in. Every resource is checked
// against Envoy's own proto constraints, and so is every config packed
// inside one (toAny, as ValidateAll does not open an Any), so a bad
// translation fails here with a name rather than as an Envoy NACK.
func Translate(in Input) (*Resources, error) {
	p := in.Policy
	if p == nil {
		return nil, errors.New("translate: nil policy")
	}
	var out Resources
	var errs []error
	add := func(list *[]types.Resource, m types.Resource, err error) {
		if err == nil {
			// Envoy's messages name the field, not the resource: without
			// the name, a bad address does not say whose it is.
			if err = m.(validator).ValidateAll(); err != nil {
				err = fmt.Errorf("%s %q: %w", m.ProtoReflect().Descriptor().Name(), m.(interface{ GetName() string }).GetName(), err)
			}
		}
		if err != nil {
			errs = append(errs, err)
			return
		}
		*list = append(*list, m)
	}

	proxy, err := proxyListener(p, in.ProxyAddress, in.AuditKey.Reveal())
	add(&out.Listeners, proxy, err)
	add(&out.Routes, proxyRoutes(p, in.Admitted), nil)

	intercepted := 0
	for _, r := range p.Routes {
		if r.TLS == config.Passthrough {
			c, err := tunnelCluster(r)
			add(&out.Clusters, c, err)
			continue
		}
		intercepted++
		l, err := mitmListener(p, r, in.ExtProcKey.Reveal(), in.AuditKey.Reveal())
		add(&out.Listeners, l, err)
		mc, err := mitmCluster(r.Host)
		add(&out.Clusters, mc, err)
		rc, err := mitmRoutes(p, r)
		add(&out.Routes, rc, err)
		c, err := upstreamCluster(r, in.SystemCAFile)
		add(&out.Clusters, c, err)
		ws, err := websocketCluster(r, in.SystemCAFile)
		add(&out.Clusters, ws, err)
		s, err := leafSecret(r.Host, in.Leaves[r.Host])
		add(&out.Secrets, s, err)
	}
	// A bottle with only passthrough hosts has no mitm path, so no
	// ext_proc either.
	if intercepted > 0 && in.ExtProcKey.Empty() {
		errs = append(errs, errors.New("no ext_proc caller key"))
	}
	if intercepted > 0 {
		c, err := extProcClusterFor(in.ExtProcAddress, in.ExtProcTrustedCA)
		add(&out.Clusters, c, err)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("translate bottle %s: %w", p.Name, errors.Join(errs...))
	}
	return &out, nil
}

// Snapshot wraps the resources in a consistent snapshot whose version is a
// hash of their content: the same policy yields the same version, so a
// reload that changes nothing pushes nothing.
func (r *Resources) Snapshot() (*cache.Snapshot, error) {
	byType := map[resource.Type][]types.Resource{
		resource.ListenerType: r.Listeners,
		resource.RouteType:    r.Routes,
		resource.ClusterType:  r.Clusters,
		resource.SecretType:   r.Secrets,
	}
	version, err := r.hash()
	if err != nil {
		return nil, err
	}
	snap, err := cache.NewSnapshot(version, byType)
	if err != nil {
		return nil, err
	}
	if err := snap.Consistent(); err != nil {
		return nil, fmt.Errorf("inconsistent snapshot: %w", err)
	}
	return snap, nil
}

func (r *Resources) hash() (string, error) {
	return hashResources(r.Listeners, r.Routes, r.Clusters, r.Secrets)
}

// hashResources is a short content hash of resource lists; deterministic
// marshalling makes equal content give equal versions.
func hashResources(lists ...[]types.Resource) (string, error) {
	h := sha256.New()
	opts := proto.MarshalOptions{Deterministic: true}
	for _, list := range lists {
		for _, m := range list {
			b, err := opts.Marshal(m)
			if err != nil {
				return "", err
			}
			h.Write(b)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}
