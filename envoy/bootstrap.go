// Package envoy renders Envoy's bootstrap and supervises the Envoy process
// egressgate runs as its child.
package envoy

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"regexp"
	"text/template"
)

//go:embed bootstrap.yaml.tmpl
var bootstrapTemplate string

const (
	defaultCluster   = "egressgate"
	defaultAdminHost = "127.0.0.1"
	// maxDownstreamConnections bounds connections across all of Envoy's
	// listeners. An agent needs a few dozen; the limit is there so a runaway
	// agent cannot exhaust the host's file descriptors.
	maxDownstreamConnections = 10000
)

// BootstrapParams are the only inputs of Envoy's bootstrap.
type BootstrapParams struct {
	// NodeID is the bottle name; the xDS server keys snapshots by it.
	NodeID string
	// Cluster is Envoy's node cluster; empty means "egressgate".
	Cluster string
	// XDSHost and XDSPort locate egressgate's xDS server. XDSHost is an IP
	// or a host name (resolved by Envoy, e.g. a compose service name).
	XDSHost string
	XDSPort int
	// AdminHost is a loopback IP for Envoy's admin listener; empty means
	// 127.0.0.1. AdminPort 0 lets the kernel pick a free port (read it back
	// with Process.AdminAddress).
	AdminHost string
	AdminPort int
	// XDSToken, if set, is the bottle's xDS token (package xdsauth). Envoy
	// sends it as "authorization: Bearer <token>" metadata on every xDS
	// stream. A bootstrap holding a token is a credential: callers write it
	// with mode 0600, and never where the agent can read it.
	XDSToken string
}

var (
	nodeIDPattern   = regexp.MustCompile(`^[a-z0-9-]+$`)
	hostnamePattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$`)
	// jwtPattern is a compact JWS: three base64url parts. Nothing else can
	// reach the YAML (no quote, backslash or newline), and the signature
	// part must be non-empty so an unsigned "alg: none" token is refused
	// here rather than by the xDS server.
	jwtPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$`)
)

// maxXDSTokenLen bounds the token like the xDS server does; egressgate's
// tokens are about 300 bytes.
const maxXDSTokenLen = 4096

// RenderBootstrap validates p and renders the bootstrap YAML.
func RenderBootstrap(p BootstrapParams) ([]byte, error) {
	data, err := p.templateData()
	if err != nil {
		return nil, err
	}
	tmpl, err := template.New("bootstrap").
		Option("missingkey=error").
		Funcs(template.FuncMap{"quote": yamlQuote}).
		Parse(bootstrapTemplate)
	if err != nil {
		return nil, fmt.Errorf("bootstrap template: %w", err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, data); err != nil {
		return nil, fmt.Errorf("bootstrap template: %w", err)
	}
	return buf.Bytes(), nil
}

// bootstrapData is what the template sees: validated params with defaults
// filled in, plus values derived from them.
type bootstrapData struct {
	BootstrapParams
	// XDSClusterType is STATIC for an IP; a host name needs Envoy's DNS
	// (LOGICAL_DNS: one address at a time, re-resolved on reconnect).
	XDSClusterType           string
	MaxDownstreamConnections int
}

func (p BootstrapParams) templateData() (bootstrapData, error) {
	if p.Cluster == "" {
		p.Cluster = defaultCluster
	}
	if p.AdminHost == "" {
		p.AdminHost = defaultAdminHost
	}
	if err := p.validate(); err != nil {
		return bootstrapData{}, err
	}
	clusterType := "STATIC"
	if net.ParseIP(p.XDSHost) == nil {
		clusterType = "LOGICAL_DNS"
	}
	return bootstrapData{
		BootstrapParams:          p,
		XDSClusterType:           clusterType,
		MaxDownstreamConnections: maxDownstreamConnections,
	}, nil
}

func (p BootstrapParams) validate() error {
	var errs []error
	if !nodeIDPattern.MatchString(p.NodeID) {
		errs = append(errs, fmt.Errorf("bootstrap: node id %q must match [a-z0-9-]+", p.NodeID))
	}
	if !nodeIDPattern.MatchString(p.Cluster) {
		errs = append(errs, fmt.Errorf("bootstrap: cluster %q must match [a-z0-9-]+", p.Cluster))
	}
	if net.ParseIP(p.XDSHost) == nil && !validHostname(p.XDSHost) {
		errs = append(errs, fmt.Errorf("bootstrap: xDS host %q is neither an IP nor a host name", p.XDSHost))
	}
	if p.XDSPort < 1 || p.XDSPort > 65535 {
		errs = append(errs, fmt.Errorf("bootstrap: xDS port %d out of range 1-65535", p.XDSPort))
	}
	// Envoy's admin API can stop Envoy and dump its config (secrets
	// included), so it never listens beyond loopback.
	if ip := net.ParseIP(p.AdminHost); ip == nil || !ip.IsLoopback() {
		errs = append(errs, fmt.Errorf("bootstrap: admin host %q must be a loopback IP", p.AdminHost))
	}
	if p.AdminPort < 0 || p.AdminPort > 65535 {
		errs = append(errs, fmt.Errorf("bootstrap: admin port %d out of range 0-65535", p.AdminPort))
	}
	// The message never quotes the token: it may be a real one, mangled.
	if p.XDSToken != "" && (len(p.XDSToken) > maxXDSTokenLen || !jwtPattern.MatchString(p.XDSToken)) {
		errs = append(errs, errors.New("bootstrap: xDS token is not a JWT (three base64url parts separated by dots)"))
	}
	return errors.Join(errs...)
}

func validHostname(h string) bool {
	return len(h) <= 253 && hostnamePattern.MatchString(h)
}

// yamlQuote renders s as a double-quoted YAML scalar. A JSON string is one,
// and quoting keeps values such as "::1" or "null" strings.
func yamlQuote(s string) (string, error) {
	b, err := json.Marshal(s)
	return string(b), err
}
