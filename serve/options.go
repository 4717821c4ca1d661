// Package serve runs egressgate's processes: `serve` (xDS, ext_proc and the
// bottle's Envoy in one), `control` (xDS for several bottles) and `extproc`
// (the ext_proc server of a split deployment).
package serve

import (
	"io"
	"log/slog"
	"path/filepath"
)

// Common are the settings every mode shares.
type Common struct {
	StateDir string // default ./.egressgate
	// Listen is the xDS (ADS) server address.
	Listen string // default 127.0.0.1:18000
	// XDSAddress is the address an Envoy dials to reach Listen, written
	// into its bootstrap (default: the address Listen bound). In compose it
	// is the service name, e.g. egressgate:18000.
	XDSAddress string
	// Admin serves /healthz, /readyz, /metrics and /status; "" disables it.
	Admin string
	// BootstrapDir receives each bottle's Envoy bootstrap, as
	// <dir>/<bottle>/envoy.yaml (default: the state dir). A separate
	// directory lets an Envoy in another container mount its bootstrap
	// without the state dir's keys.
	BootstrapDir string
	// ProxyListen is where each bottle's Envoy accepts the agent's proxy
	// connections.
	ProxyListen string // default 127.0.0.1:3128
	CodexHome   string
	// SystemCAFile verifies upstreams whose route names no ca_file; it is
	// a path on Envoy's file system.
	SystemCAFile string // default /etc/ssl/certs/ca-certificates.crt

	// Audit says where the audit trail of the bottles' requests goes.
	Audit AuditOptions

	Stdout io.Writer
	Logger *slog.Logger
	// Reload delivers SIGHUP.
	Reload <-chan struct{}
}

// Options configure Run (all-in-one).
type Options struct {
	Common
	Manifest string
	// ExtProcListen is where the built-in ext_proc server listens: a TCP
	// address, or "unix:PATH". Default: a Unix socket in the state dir
	// when egressgate starts Envoy itself, else 127.0.0.1:0.
	ExtProcListen string
	// ExtProcAdvertise is the address Envoy dials for the built-in ext_proc
	// server (default: the address ExtProcListen bound).
	ExtProcAdvertise string
	// ExtProcAddress, when set, points Envoy at an ext_proc server run
	// elsewhere and starts none here.
	ExtProcAddress string
	EnvoyBin       string
	ExternalEnvoy  bool
	// EnvoyAdmin is the path of the Unix socket Envoy's admin API listens
	// on (mode 0600); "" means <BootstrapDir>/<bottle>/envoy-admin.sock.
	// For an external Envoy it is a path on that Envoy's file system.
	EnvoyAdmin string
}

// ControlOptions configure RunControl.
type ControlOptions struct {
	Common
	Manifests []string
	// ExtProcAddress is where each bottle's sidecar ext_proc server
	// listens, as Envoy sees it.
	ExtProcAddress string // default 127.0.0.1:9001
	// EnvoyAdmin is the path, on each Envoy's file system, of the Unix
	// socket its admin API listens on; "" means beside each bottle's
	// bootstrap, <BootstrapDir>/<bottle>/envoy-admin.sock. A path given
	// here is the same for every bottle, so suits Envoys that do not share
	// a file system.
	EnvoyAdmin string
	// SidecarDir, if set, receives a copy of what each bottle's ext_proc
	// sidecar needs, DIR/<bottle>/extproc.jwt and DIR/control-ca.pem, for a
	// sidecar that must not mount the state dir (which holds the signing
	// keys). Without it the sidecar reads STATE_DIR/tokens/<bottle>.jwt.
	SidecarDir string
}

func (c *Common) setDefaults() {
	def(&c.StateDir, ".egressgate")
	def(&c.BootstrapDir, c.StateDir)
	def(&c.Listen, "127.0.0.1:18000")
	def(&c.ProxyListen, "127.0.0.1:3128")
	def(&c.SystemCAFile, "/etc/ssl/certs/ca-certificates.crt")
	if c.Stdout == nil {
		c.Stdout = io.Discard
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	for _, d := range []*string{&c.StateDir, &c.BootstrapDir} {
		if abs, err := filepath.Abs(*d); err == nil {
			*d = abs
		}
	}
}

func (o *Options) setDefaults() {
	o.Common.setDefaults()
	def(&o.ExtProcListen, defaultExtProcListen(o.StateDir, o.ExternalEnvoy))
}

// defaultExtProcListen puts the built-in ext_proc server on a Unix socket
// beside Envoy when egressgate runs that Envoy: every agent request is one
// ext_proc call, and a Unix socket costs about 9 % less CPU per request
// than loopback TCP (docs/benchmarks.md). An external Envoy may not share
// the state dir's filesystem, so it gets loopback TCP; so does a state
// dir whose path is too long for a socket address (108 bytes on Linux).
func defaultExtProcListen(stateDir string, externalEnvoy bool) string {
	path, err := filepath.Abs(filepath.Join(stateDir, "extproc.sock"))
	if externalEnvoy || err != nil || len(path) >= maxUnixPath {
		return "127.0.0.1:0"
	}
	return unixPrefix + path
}

// maxUnixPath is sun_path's size on Linux, its terminating NUL included.
const maxUnixPath = 108

func (o *ControlOptions) setDefaults() {
	o.Common.setDefaults()
	def(&o.ExtProcAddress, "127.0.0.1:9001")
	if o.SidecarDir != "" {
		if abs, err := filepath.Abs(o.SidecarDir); err == nil {
			o.SidecarDir = abs
		}
	}
}

func def(s *string, v string) {
	if *s == "" {
		*s = v
	}
}
