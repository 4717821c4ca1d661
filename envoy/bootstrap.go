// Package envoy renders Envoy's bootstrap and supervises the Envoy process
// egressgate runs as its child.
package envoy

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"
)

//go:embed bootstrap.yaml.tmpl
var bootstrapTemplate string

const (
	defaultCluster = "egressgate"
	// MaxSocketPathLen is the longest Unix socket path Linux can bind:
	// sun_path holds 108 bytes, the last one the terminating NUL.
	MaxSocketPathLen = 107
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
	// AdminSocket is the absolute path, on Envoy's file system, of the
	// Unix socket Envoy's admin API listens on (mode 0600). Not TCP: the
	// admin's /config_dump shows this bootstrap's xDS token and the
	// ext_proc caller key, and on loopback TCP every local user could read
	// them. Required.
	AdminSocket string
	// XDSToken, if set, is the bottle's xDS token (package xdsauth). Envoy
	// sends it as "authorization: Bearer <token>" metadata on every xDS
	// stream. A bootstrap holding a token is a credential: callers write it
	// with mode 0600, and never where the agent can read it.
	XDSToken string
	// XDSTrustedCA, if set, is the PEM of the control CA: Envoy then
	// speaks TLS to the xDS server (and to the audit log service behind
	// it) and accepts only a certificate from that CA naming XDSHost.
	// Needed wherever the link leaves loopback; control always sets it.
	XDSTrustedCA string
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
	// XDSSANType is how XDSHost appears in the server's certificate.
	XDSSANType string
}

func (p BootstrapParams) templateData() (bootstrapData, error) {
	if p.Cluster == "" {
		p.Cluster = defaultCluster
	}
	if err := p.validate(); err != nil {
		return bootstrapData{}, err
	}
	clusterType, sanType := "STATIC", "IP_ADDRESS"
	if net.ParseIP(p.XDSHost) == nil {
		clusterType, sanType = "LOGICAL_DNS", "DNS"
	}
	return bootstrapData{
		BootstrapParams:          p,
		XDSClusterType:           clusterType,
		XDSSANType:               sanType,
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
	if err := CheckAdminSocket(p.AdminSocket); err != nil {
		errs = append(errs, fmt.Errorf("bootstrap: %w", err))
	}
	if p.XDSTrustedCA != "" {
		if block, _ := pem.Decode([]byte(p.XDSTrustedCA)); block == nil || block.Type != "CERTIFICATE" {
			errs = append(errs, errors.New("bootstrap: xDS trusted CA is not a PEM certificate"))
		}
	}
	// The message never quotes the token: it may be a real one, mangled.
	if p.XDSToken != "" && (len(p.XDSToken) > maxXDSTokenLen || !jwtPattern.MatchString(p.XDSToken)) {
		errs = append(errs, errors.New("bootstrap: xDS token is not a JWT (three base64url parts separated by dots)"))
	}
	return errors.Join(errs...)
}

// CheckAdminSocket reports why path cannot be the admin socket of an
// Envoy: Envoy resolves a relative path against its own working directory,
// which egressgate does not know, and refuses a path longer than sun_path
// only once it is starting.
func CheckAdminSocket(path string) error {
	switch {
	case path == "":
		return errors.New("envoy admin socket path is required")
	case !filepath.IsAbs(path):
		return fmt.Errorf("envoy admin socket %q must be an absolute path", path)
	case len(path) > MaxSocketPathLen:
		return fmt.Errorf("envoy admin socket path %s is %d bytes, over the %d a Unix socket path may have; choose a shorter --envoy-admin (or state dir)",
			path, len(path), MaxSocketPathLen)
	case strings.ContainsAny(path, "\x00\n"):
		return fmt.Errorf("envoy admin socket %q holds a NUL or newline", path)
	}
	return nil
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
