// Package serve runs one bottle's egress: the xDS and ext_proc servers and,
// unless told otherwise, the Envoy that they configure.
package serve

import (
	"io"
	"log/slog"
	"path/filepath"
)

// Options configure Run. The zero value of every field except Manifest has a
// working default.
type Options struct {
	Manifest string
	StateDir string // default ./.egressgate
	// Listen is the xDS (ADS) server address.
	Listen string // default 127.0.0.1:18000
	// ProxyListen is where Envoy accepts the agent's proxy connections.
	ProxyListen string // default 127.0.0.1:3128
	// ExtProcListen is where the built-in ext_proc server listens.
	ExtProcListen string // default 127.0.0.1:0
	// ExtProcAddress, when set, points Envoy at an ext_proc server run
	// elsewhere and starts none here.
	ExtProcAddress string
	EnvoyBin       string
	ExternalEnvoy  bool
	// EnvoyAdmin is the Envoy admin address; port 0 picks a free one.
	EnvoyAdmin string // default 127.0.0.1:0
	CodexHome  string
	// SystemCAFile verifies upstreams whose route names no ca_file.
	SystemCAFile string // default /etc/ssl/certs/ca-certificates.crt

	Stdout io.Writer
	Logger *slog.Logger
	// Reload delivers SIGHUP.
	Reload <-chan struct{}
}

func (o *Options) setDefaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&o.StateDir, ".egressgate")
	def(&o.Listen, "127.0.0.1:18000")
	def(&o.ProxyListen, "127.0.0.1:3128")
	def(&o.ExtProcListen, "127.0.0.1:0")
	def(&o.EnvoyAdmin, "127.0.0.1:0")
	def(&o.SystemCAFile, "/etc/ssl/certs/ca-certificates.crt")
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if abs, err := filepath.Abs(o.StateDir); err == nil {
		o.StateDir = abs
	}
}
