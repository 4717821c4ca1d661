package main

import (
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"github.com/egressgate/egressgate/internal/procstat"
)

// egressgateSystem is `egressgate serve` with its own Envoy, on a manifest
// with one intercepted route that injects the host token, everything else
// default: the audit trail on (STATE_DIR/audit.log), log level info. DLP is
// off: Envoy alone and mitmproxy strip and inject only, and DLP's own cost
// has its benchmark (BenchmarkDLPBody, docs/benchmarks.md); a build from
// before the dlp key (issue 13) refuses this manifest. Systems egressgate
// and egressgate-alt differ only in the binary.
type egressgateSystem struct {
	sys string
	bin string
}

func (e egressgateSystem) name() string { return e.sys }

// benchManifest points the route at the loopback upstream the way the
// integration tests do: the route's upstream.address and ca_file.
const benchManifest = `name: bench
dlp: {mode: off}
egress:
  routes:
    - host: %s
      auth: {scheme: Bearer, token_file: %q}
      upstream: {address: %q, ca_file: %q}
`

func (e egressgateSystem) launch(env *benchEnv, round int) (*instance, error) {
	dir, err := env.roundDir(e.sys, round)
	if err != nil {
		return nil, err
	}
	manifest := filepath.Join(dir, "bench.yaml")
	text := fmt.Sprintf(benchManifest, benchHost, env.tokenPath, env.up.addr, env.upstreamCAPath)
	if err := os.WriteFile(manifest, []byte(text), 0o600); err != nil {
		return nil, err
	}
	proxy, err := freePort()
	if err != nil {
		return nil, err
	}
	// A fresh state dir each round: the cold start includes minting the
	// bottle CA, as a first start on a host does.
	state := filepath.Join(dir, "state")
	args := []string{"serve",
		"--manifest", manifest,
		"--state-dir", state,
		"--listen", "127.0.0.1:0",
		"--admin", "127.0.0.1:0",
		"--proxy", proxy,
		"--envoy", env.envoyBin,
	}
	p, err := startProcess(e.sys, e.bin, args, env.opts.egressgateEnv, filepath.Join(dir, "egressgate.log"))
	if err != nil {
		return nil, err
	}
	return &instance{
		procs: []*process{p},
		proxy: &url.URL{Scheme: "http", Host: proxy},
		roots: func() (*x509.CertPool, error) { return poolFromFile(filepath.Join(state, "ca.pem")) },
		parts: func() ([]part, error) {
			kids := procstat.ChildPIDs(p.pid())
			if len(kids) != 1 {
				return nil, fmt.Errorf("egressgate has %d children, want 1 (its Envoy)", len(kids))
			}
			return []part{{name: "egressgate", pid: p.pid()}, {name: "envoy", pid: kids[0]}}, nil
		},
	}, nil
}
