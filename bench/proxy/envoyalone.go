package main

import (
	"bytes"
	"crypto/x509"
	_ "embed"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"text/template"
)

// envoyAloneTemplate mirrors egressgate's generated Envoy config without
// egressgate: see the comment at its top for what differs.
//
//go:embed envoy-alone.yaml
var envoyAloneTemplate string

// envoyAlone is the same Envoy binary on a static bootstrap.
type envoyAlone struct{}

func (envoyAlone) name() string { return sysEnvoyAlone }

type envoyAloneConfig struct {
	Host, AdminSocket, LeafCert, LeafKey, TokenFile, UpstreamCA string
	ProxyPort                                                   int
	UpstreamIP                                                  string
	UpstreamPort                                                int
}

func (envoyAlone) launch(env *benchEnv, round int) (*instance, error) {
	dir, err := env.roundDir(sysEnvoyAlone, round)
	if err != nil {
		return nil, err
	}
	// Minted here, inside the timed cold start, as egressgate mints its
	// bottle CA and leaf at start-up and mitmproxy its CA.
	ca, err := newCA("egressgate bench envoy-alone CA")
	if err != nil {
		return nil, err
	}
	l, err := ca.leaf(benchHost)
	if err != nil {
		return nil, err
	}
	certPath, keyPath, err := l.write(dir, "leaf")
	if err != nil {
		return nil, err
	}
	proxy, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg := envoyAloneConfig{
		Host: benchHost, AdminSocket: filepath.Join(dir, "envoy-admin.sock"),
		LeafCert: certPath, LeafKey: keyPath, TokenFile: env.tokenPath, UpstreamCA: env.upstreamCAPath,
	}
	if cfg.ProxyPort, err = port(proxy); err != nil {
		return nil, err
	}
	if cfg.UpstreamIP, _, err = net.SplitHostPort(env.up.addr); err != nil {
		return nil, err
	}
	if cfg.UpstreamPort, err = port(env.up.addr); err != nil {
		return nil, err
	}
	configPath := filepath.Join(dir, "envoy.yaml")
	if err := renderEnvoyAlone(configPath, cfg); err != nil {
		return nil, err
	}
	// The flags egressgate gives its Envoy (envoy/process.go).
	args := []string{"-c", configPath, "--disable-hot-restart", "-l", "info"}
	p, err := startProcess(sysEnvoyAlone, env.envoyBin, args, nil, filepath.Join(dir, "envoy.log"))
	if err != nil {
		return nil, err
	}
	return &instance{
		procs: []*process{p},
		proxy: &url.URL{Scheme: "http", Host: proxy},
		roots: func() (*x509.CertPool, error) { return ca.pool(), nil },
		parts: func() ([]part, error) { return []part{{name: "envoy", pid: p.pid()}}, nil },
	}, nil
}

func renderEnvoyAlone(path string, cfg envoyAloneConfig) error {
	tmpl, err := template.New("envoy-alone.yaml").Funcs(template.FuncMap{"quote": strconv.Quote}).
		Option("missingkey=error").Parse(envoyAloneTemplate)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, cfg); err != nil {
		return fmt.Errorf("render %s: %w", path, err)
	}
	return os.WriteFile(path, buf.Bytes(), 0o600)
}

func port(hostport string) (int, error) {
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(p)
}
