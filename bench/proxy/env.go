package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// benchEnv is what every system of a run shares: the upstream, its CA,
// the host token, the tools, and the run's temp dir.
type benchEnv struct {
	opts           options
	root           string // the module's root directory
	dir            string // the run's temp dir
	up             *upstream
	upstreamCA     *benchCA
	upstreamCAPath string
	// hostToken is the credential the proxies inject. Never printed:
	// it is only in tokenPath (0600) and in memory.
	hostToken string
	tokenPath string

	envoyBin, egressgateBin, altBin, mitmdumpBin string
	versions                                     []string // tool versions for the report
}

// prepare sets up a run; the returned cleanup stops the upstream and
// removes the temp dir (unless -keep).
func prepare(ctx context.Context, o options, stderr io.Writer) (*benchEnv, func(), error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "bench-proxy-")
	if err != nil {
		return nil, nil, err
	}
	env := &benchEnv{opts: o, root: root, dir: dir}
	cleanup := func() {
		if env.up != nil {
			env.up.close()
		}
		if o.keep {
			fmt.Fprintf(stderr, "bench-proxy: kept %s (configs, logs, state dirs)\n", dir)
			return
		}
		_ = os.RemoveAll(dir)
	}
	if err := env.setup(ctx, stderr); err != nil {
		cleanup()
		return nil, nil, err
	}
	return env, cleanup, nil
}

func (env *benchEnv) setup(ctx context.Context, stderr io.Writer) error {
	if err := env.findTools(ctx, stderr); err != nil {
		return err
	}
	ca, err := newCA("egressgate bench upstream CA")
	if err != nil {
		return err
	}
	env.upstreamCA = ca
	env.upstreamCAPath = filepath.Join(env.dir, "upstream-ca.pem")
	if err := os.WriteFile(env.upstreamCAPath, ca.certPEM, 0o644); err != nil {
		return err
	}
	l, err := ca.leaf(benchHost)
	if err != nil {
		return err
	}
	cert, err := l.tlsCertificate()
	if err != nil {
		return err
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	env.hostToken = "bench-host-" + hex.EncodeToString(raw)
	// No trailing newline: envoy-alone's generic secret is the file as
	// it is, where egressgate and the addon trim whitespace.
	env.tokenPath = filepath.Join(env.dir, "host-token")
	if err := os.WriteFile(env.tokenPath, []byte(env.hostToken), 0o600); err != nil {
		return err
	}
	env.up, err = startUpstream(cert, env.hostToken)
	return err
}

// findTools locates (or builds, or installs) what the chosen systems need,
// and records their versions.
func (env *benchEnv) findTools(ctx context.Context, stderr io.Writer) error {
	o := env.opts
	if o.has(sysEgressgate) || o.has(sysEgressgateAlt) || o.has(sysEnvoyAlone) {
		env.envoyBin = o.envoyBin
		if env.envoyBin == "" {
			env.envoyBin = filepath.Join(env.root, ".tools", "bin", "envoy")
		}
		if _, err := exec.LookPath(env.envoyBin); err != nil {
			return fmt.Errorf("no Envoy at %s (%v): run `make setup` or scripts/setup-envoy.sh (installs .tools/bin/envoy), or pass -envoy / set ENVOY_BIN", env.envoyBin, err)
		}
		env.versions = append(env.versions, "envoy: "+firstLine(ctx, env.envoyBin, "--version"))
	}
	if o.has(sysEgressgate) {
		env.egressgateBin = o.egressgateBin
		if env.egressgateBin == "" {
			env.egressgateBin = filepath.Join(env.dir, "egressgate")
			fmt.Fprintln(stderr, "bench-proxy: go build -o", env.egressgateBin, "./cmd/egressgate")
			if err := run(ctx, env.root, stderr, "go", "build", "-o", env.egressgateBin, "./cmd/egressgate"); err != nil {
				return fmt.Errorf("build egressgate: %w", err)
			}
		}
		if _, err := exec.LookPath(env.egressgateBin); err != nil {
			return fmt.Errorf("egressgate binary %s: %w", env.egressgateBin, err)
		}
		env.versions = append(env.versions, "egressgate: "+firstLine(ctx, env.egressgateBin, "version")+" ("+env.egressgateBin+")")
	}
	if o.has(sysEgressgateAlt) {
		env.altBin = o.altBin
		if _, err := exec.LookPath(env.altBin); err != nil {
			return fmt.Errorf("egressgate-alt binary %s: %w", env.altBin, err)
		}
		env.versions = append(env.versions, "egressgate-alt: "+firstLine(ctx, env.altBin, "version")+" ("+env.altBin+")")
	}
	if o.has(sysMitmproxy) {
		env.mitmdumpBin = o.mitmdumpBin
		if env.mitmdumpBin == "" {
			// Installed on demand: only this benchmark uses mitmproxy.
			if err := run(ctx, env.root, stderr, filepath.Join(env.root, "scripts", "setup-mitmproxy.sh")); err != nil {
				return fmt.Errorf("mitmproxy could not be installed (%w): run scripts/setup-mitmproxy.sh (needs python3 with venv, and PyPI), pass -mitmdump, or leave it out with -systems", err)
			}
			env.mitmdumpBin = filepath.Join(env.root, ".tools", "bin", "mitmdump")
		}
		if _, err := exec.LookPath(env.mitmdumpBin); err != nil {
			return fmt.Errorf("no mitmdump at %s (%v): run scripts/setup-mitmproxy.sh (installs .tools/bin/mitmdump), or pass -mitmdump", env.mitmdumpBin, err)
		}
		env.versions = append(env.versions, "mitmproxy: "+firstLine(ctx, env.mitmdumpBin, "--version"))
	}
	return nil
}

// roundDir is a fresh directory for one system's round.
func (env *benchEnv) roundDir(system string, round int) (string, error) {
	dir := filepath.Join(env.dir, fmt.Sprintf("%s-%d", system, round))
	return dir, os.MkdirAll(dir, 0o700)
}

// run runs a setup command, its output on stderr.
func run(ctx context.Context, dir string, stderr io.Writer, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, stderr, stderr
	return cmd.Run()
}

// firstLine is the first line a tool prints, for the report's header.
func firstLine(ctx context.Context, bin string, args ...string) string {
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	// Envoy starts its --version with an empty line.
	for line := range bytes.SplitSeq(out, []byte("\n")) {
		if l := strings.TrimSpace(string(line)); l != "" {
			return l
		}
	}
	return "unknown"
}

// moduleRoot is the directory of this module's go.mod, found upwards from
// the working directory (go run ./bench/proxy runs from the root).
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if f, err := os.Open(filepath.Join(dir, "go.mod")); err == nil {
			sc := bufio.NewScanner(f)
			sc.Scan()
			f.Close()
			if strings.TrimSpace(sc.Text()) == "module github.com/egressgate/egressgate" {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run from inside the egressgate module (make bench-proxy)")
		}
		dir = parent
	}
}
