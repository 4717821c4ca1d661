// Package agentenv writes what a bottle's agent container is given: the
// env file that points it at the egress and makes it trust the bottle CA,
// the CA certificate, and per template the placeholder login that keeps
// the agent's CLI logged in while the real credential stays on the host.
//
// Nothing it writes comes from a host credential or the host environment
// except, for Codex, the non-secret facts of the host's access token
// (expiry, account, plan) that codexauth copies into placeholders.
//
// Unless told not to, it also plants canaries (package canary): fake AWS
// and GitHub credentials, new on every run, in the env file and an AWS
// credentials file, recorded in the state dir for the egress to watch for.
package agentenv

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/egressgate/egressgate/canary"
	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/pki"
)

// Defaults of the agent-env flags.
const (
	// DefaultStateDir matches serve's, so both use the same bottle CA.
	DefaultStateDir = ".egressgate"
	// DefaultProxyURL is serve's default proxy listener.
	DefaultProxyURL = "http://127.0.0.1:3128"
	// DefaultCAPath is where the agent sees ca.pem when the output
	// directory is mounted at MountPoint.
	DefaultCAPath = MountPoint + "/ca.pem"
)

// MountPoint is where the agent container is expected to mount the output
// directory. CODEX_HOME points below it.
const MountPoint = "/egressgate"

// Options say what agent-env reads and where it writes. Zero values take
// the defaults above.
type Options struct {
	// Manifest is the bottle manifest.
	Manifest string
	// OutDir receives env, ca.pem, ca-bundle.pem, the canaries'
	// aws/credentials and, for Codex, codex/auth.json.
	OutDir string
	// StateDir holds the bottle CA (created there if missing) and, per
	// bottle, the canaries planted (<bottle>/canaries.json).
	StateDir string
	// ProxyURL is the egress proxy as the agent reaches it.
	ProxyURL string
	// CAPath is where the agent sees the output: the path of ca.pem in
	// its container (any name ending in .pem or .crt), or the directory the
	// output is mounted at. Every path the env file names (ca-bundle.pem,
	// CODEX_HOME) lies in that directory.
	CAPath string
	// SystemRoots is the PEM bundle of public roots that ca-bundle.pem
	// starts with (default: the host's /etc/ssl/certs/ca-certificates.crt).
	SystemRoots []byte
	// Host are config's seams to the host (files, environment, Codex home,
	// clock). Host.Now also dates the CA and the placeholders.
	Host config.Options
	// NoCanaries plants no canaries (--no-canaries): the agent gets no fake
	// AWS or GitHub credentials, and the state dir records none.
	NoCanaries bool
}

// Result says what Generate wrote, for a summary that shows no values.
type Result struct {
	// Files are the paths written, in the order written.
	Files []string
	// Notes explain what was left out and how to use the output.
	Notes []string
}

// Generate loads the manifest (and, only if it forwards them, the host
// credentials) and the bottle CA, and writes the agent's files into
// o.OutDir. A manifest problem is returned as *config.Errors.
func Generate(o Options) (*Result, error) {
	o = o.withDefaults()
	if err := o.check(); err != nil {
		return nil, err
	}
	now := o.Host.Now()
	p, err := config.Load(o.Manifest, o.Host)
	if err != nil {
		return nil, err
	}
	if err := p.HostLoginError(); err != nil {
		return nil, err
	}
	ca, err := pki.LoadOrCreateCA(o.StateDir, now)
	if err != nil {
		return nil, fmt.Errorf("bottle CA: %w", err)
	}
	if o.SystemRoots == nil {
		// Best effort: without them ca-bundle.pem holds the bottle CA only,
		// which still serves every intercepted host.
		o.SystemRoots, _ = os.ReadFile(defaultSystemRoots)
	}
	var set *canary.Set
	if !o.NoCanaries {
		s := canary.Generate(now)
		set = &s
	}
	b, err := build(p, ca.CertPEM(), o, set, now)
	if err != nil {
		return nil, err
	}
	if b.canaries != nil {
		// Recorded before they are planted: a canary the agent can hold
		// is always one the egress watches for.
		if err := canary.Record(o.StateDir, p.Name, *b.canaries); err != nil {
			return nil, err
		}
	}
	return b.write(o.OutDir)
}

func (o Options) withDefaults() Options {
	if o.StateDir == "" {
		o.StateDir = DefaultStateDir
	}
	if o.ProxyURL == "" {
		o.ProxyURL = DefaultProxyURL
	}
	if o.CAPath == "" {
		o.CAPath = DefaultCAPath
	}
	if o.Host.Now == nil {
		o.Host.Now = time.Now
	}
	return o
}

// check refuses values the env file cannot carry or the agent cannot use.
// An env file has no quoting, so a line break would start a new variable.
// within reports whether path is dir or lies below it.
func within(path, dir string) bool {
	p, err1 := filepath.Abs(path)
	d, err2 := filepath.Abs(dir)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(d, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

func (o Options) check() error {
	if o.OutDir == "" {
		return errors.New("no output directory (--out)")
	}
	// The output is mounted into the agent's container; inside the state
	// dir it would hand the agent the CA key and the xDS tokens.
	if within(o.OutDir, o.StateDir) || within(o.StateDir, o.OutDir) {
		return fmt.Errorf("--out %s overlaps the state dir %s, which holds keys the agent must never see", o.OutDir, o.StateDir)
	}
	for _, f := range []struct{ flag, value string }{{"--proxy-url", o.ProxyURL}, {"--ca-path", o.CAPath}} {
		if strings.ContainsAny(f.value, "\r\n\x00") || strings.TrimSpace(f.value) != f.value {
			return fmt.Errorf("%s: line breaks and surrounding spaces cannot be written to an env file", f.flag)
		}
	}
	u, err := url.Parse(o.ProxyURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("--proxy-url: want http://HOST:PORT, the egress proxy as the agent reaches it")
	}
	// The agent's path, so path (slash-separated), not filepath.
	if !path.IsAbs(o.CAPath) {
		return errors.New("--ca-path: want an absolute path inside the agent container")
	}
	if name := path.Base(o.paths().ca); name == bundleFile || name == envFile {
		return fmt.Errorf("--ca-path: %s is another file agent-env writes; name the CA ca.pem, or give the directory", name)
	}
	return nil
}

// agentPaths are the paths the env file names, as the agent sees them.
type agentPaths struct {
	mount  string // where the output directory is mounted
	ca     string // ca.pem
	bundle string // ca-bundle.pem
	codex  string // CODEX_HOME
	aws    string // AWS_SHARED_CREDENTIALS_FILE
}

// paths resolves CAPath. A file name (.pem, .crt) is ca.pem's own path
// and its directory the mount point; anything else is the mount point.
// Either way every other file is found under the mount point, so an env
// file never points the agent at a directory it was not given.
func (o Options) paths() agentPaths {
	mount, ca := path.Clean(o.CAPath), ""
	switch path.Ext(mount) {
	case ".pem", ".crt":
		mount, ca = path.Dir(mount), mount
	default:
		ca = path.Join(mount, caFile)
	}
	return agentPaths{mount: mount, ca: ca, bundle: path.Join(mount, bundleFile), codex: path.Join(mount, codexDir), aws: path.Join(mount, awsCredentialsFile)}
}
