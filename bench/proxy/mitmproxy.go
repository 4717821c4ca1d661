package main

import (
	"crypto/x509"
	"net"
	"net/url"
	"path/filepath"
)

// mitmproxySystem is mitmdump in regular (forward proxy) mode with
// mitm_addon.py doing egressgate's strip and inject.
type mitmproxySystem struct{}

func (mitmproxySystem) name() string { return sysMitmproxy }

func (mitmproxySystem) launch(env *benchEnv, round int) (*instance, error) {
	dir, err := env.roundDir(sysMitmproxy, round)
	if err != nil {
		return nil, err
	}
	proxy, err := freePort()
	if err != nil {
		return nil, err
	}
	host, port, err := net.SplitHostPort(proxy)
	if err != nil {
		return nil, err
	}
	// A fresh confdir each round: mitmproxy makes its CA there at start,
	// inside the cold start, as egressgate makes its bottle CA.
	confdir := filepath.Join(dir, "confdir")
	args := []string{
		"--mode", "regular",
		"--listen-host", host,
		"--listen-port", port,
		"--set", "confdir=" + confdir,
		// Upstream certificates are checked against the bench CA only.
		"--set", "ssl_verify_upstream_trusted_ca=" + env.upstreamCAPath,
		// No line per flow: printing costs CPU the others do not spend.
		"--set", "flow_detail=0",
		"-s", filepath.Join(env.root, "bench", "proxy", "mitm_addon.py"),
		"--set", "bench_token_file=" + env.tokenPath,
		"--set", "bench_upstream=" + benchHost + "=" + env.up.addr,
	}
	p, err := startProcess(sysMitmproxy, env.mitmdumpBin, args, nil, filepath.Join(dir, "mitmdump.log"))
	if err != nil {
		return nil, err
	}
	return &instance{
		procs: []*process{p},
		proxy: &url.URL{Scheme: "http", Host: proxy},
		roots: func() (*x509.CertPool, error) {
			return poolFromFile(filepath.Join(confdir, "mitmproxy-ca-cert.pem"))
		},
		parts: func() ([]part, error) { return []part{{name: "mitmdump", pid: p.pid()}}, nil },
	}, nil
}
