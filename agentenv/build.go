package agentenv

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"time"

	"github.com/egressgate/egressgate/canary"
	"github.com/egressgate/egressgate/codexauth"
	"github.com/egressgate/egressgate/config"
)

const (
	caFile     = "ca.pem"
	bundleFile = "ca-bundle.pem"
	// defaultSystemRoots is Debian's and Ubuntu's public root bundle.
	defaultSystemRoots = "/etc/ssl/certs/ca-certificates.crt"
	envFile            = "env"
	codexDir           = "codex"
	codexAuthFile      = codexDir + "/auth.json"

	// CodexHome is CODEX_HOME inside the agent container when the output
	// is mounted at MountPoint: the output's codex directory, mounted
	// writable because Codex keeps its sessions there and rewrites
	// auth.json when it refreshes.
	CodexHome = MountPoint + "/" + codexDir

	// ClaudePlaceholderToken is the agent's CLAUDE_CODE_OAUTH_TOKEN. It is
	// plainly fake: the egress strips it and injects the host's token for
	// api.anthropic.com, so all it does is keep Claude Code from asking
	// for a login.
	ClaudePlaceholderToken = "egressgate-placeholder-claude-oauth-token"
	claudeAPIHost          = "api.anthropic.com"

	templateCodex  = "codex"
	templateClaude = "claude"
)

// file is one file to write, by slash-separated path under the output
// directory.
type file struct {
	name string
	data []byte
	mode fs.FileMode
}

type envVar struct{ key, value string }

// bundle is everything agent-env writes, built in memory first so that a
// failure (say, an unusable host token) writes nothing.
type bundle struct {
	files []file
	env   []envVar
	notes []string
	// stale are files an earlier run may have left that this one does not
	// write; they are reported, not removed (see write).
	stale []string
	// canaries are the canaries planted, for the state dir; nil when none.
	canaries *canary.Set
}

// build decides the agent's files for policy p, planting canaries from set
// (nil: none). It reads nothing; the only credential it touches is the
// host's Codex access token, and of that only the claims codexauth copies.
func build(p *config.Policy, caPEM []byte, o Options, set *canary.Set, now time.Time) (*bundle, error) {
	b := &bundle{env: baseEnv(o)}
	b.files = append(b.files,
		file{name: caFile, data: caPEM, mode: 0o644},
		file{name: bundleFile, data: caBundle(o.SystemRoots, caPEM), mode: 0o644})
	if name := path.Base(o.paths().ca); name != caFile {
		// --ca-path named the CA file otherwise: the mounted directory
		// must hold it under that name too.
		b.files = append(b.files, file{name: name, data: caPEM, mode: 0o644})
	}
	switch p.Template {
	case templateCodex:
		if err := b.addCodex(p, o.paths().codex, now); err != nil {
			return nil, err
		}
	case templateClaude:
		b.addClaude(p)
	}
	b.addCanaries(p, set, o)
	b.files = append(b.files, file{name: envFile, data: b.envFile(), mode: 0o644})
	b.notes = append(b.notes, mountHint(o))
	return b, nil
}

// mountHint says how to hand the output to the agent container: the env
// file's paths are the container's, not the host's.
func mountHint(o Options) string {
	return fmt.Sprintf("start the agent container with --env-file %s and %s mounted at %s",
		filepath.Join(o.OutDir, envFile), o.OutDir, o.paths().mount)
}

// caBundle is the public roots followed by the bottle CA. The variables
// that replace a tool's trust store point here, so passthrough hosts
// (tunnelled, carrying their real certificates) still verify.
func caBundle(roots, caPEM []byte) []byte {
	out := append([]byte(nil), roots...)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	return append(out, caPEM...)
}

// baseEnv points every common HTTP stack at the proxy and at the bottle
// CA. Both spellings of the proxy variables, because curl reads only the
// lower-case http_proxy and some Go and Python tools only the upper-case.
// Variables that add a CA to the tool's roots (Codex, Node) get ca.pem;
// those that replace the roots (OpenSSL and Go's SSL_CERT_FILE, Python
// requests, curl, git) get ca-bundle.pem.
func baseEnv(o Options) []envVar {
	const noProxy = "localhost,127.0.0.1,::1"
	env := []envVar{
		{"HTTPS_PROXY", o.ProxyURL}, {"HTTP_PROXY", o.ProxyURL},
		{"https_proxy", o.ProxyURL}, {"http_proxy", o.ProxyURL},
		{"NO_PROXY", noProxy}, {"no_proxy", noProxy},
	}
	paths := o.paths()
	for _, k := range []string{"CODEX_CA_CERTIFICATE", "NODE_EXTRA_CA_CERTS"} {
		env = append(env, envVar{k, paths.ca})
	}
	for _, k := range []string{"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO"} {
		env = append(env, envVar{k, paths.bundle})
	}
	return env
}

// addCodex writes the placeholder ChatGPT login when the host's is
// forwarded. Without forwarding there is no host token to mirror, so the
// agent logs in inside the bottle and keeps its own auth.json.
func (b *bundle) addCodex(p *config.Policy, codexHome string, now time.Time) error {
	if !p.ForwardHostCredentials {
		b.stale = append(b.stale, codexAuthFile)
		b.notes = append(b.notes, "no codex/auth.json and no CODEX_HOME: host credentials are not forwarded, so chatgpt.com gets no credential (the egress strips the agent's own); set forward_host_credentials: true to use the host's Codex login")
		return nil
	}
	slot, ok := codexSlot(p)
	if !ok {
		return errors.New("the policy forwards host credentials but holds no Codex login")
	}
	claims, err := codexauth.ClaimsFromAccessToken(slot.Value.Reveal())
	if err != nil {
		return fmt.Errorf("host Codex login %s: %w", slot.Source.Ref, err)
	}
	data, err := placeholderAuthJSON(claims, now)
	if err != nil {
		return err
	}
	// 0600 like Codex's own auth.json: it is a placeholder, but tools and
	// people treat that file name as a secret, and should.
	b.files = append(b.files, file{name: codexAuthFile, data: data, mode: 0o600})
	b.env = append(b.env, envVar{"CODEX_HOME", codexHome})
	b.notes = append(b.notes, "codex/auth.json is a placeholder ChatGPT login; "+codexHome+" must be writable in the container (Codex keeps its sessions there)")
	return nil
}

func codexSlot(p *config.Policy) (config.Slot, bool) {
	for _, s := range p.Slots {
		if s.Source.Kind == config.SourceCodex {
			return s, true
		}
	}
	return config.Slot{}, false
}

// placeholderAuthJSON mints with a fresh throwaway key each run: nothing
// ever verifies a placeholder, so there is no key worth keeping.
func placeholderAuthJSON(c codexauth.Claims, now time.Time) ([]byte, error) {
	m, err := codexauth.NewMinter()
	if err != nil {
		return nil, err
	}
	t, err := m.Tokens(c, now)
	if err != nil {
		return nil, err
	}
	return codexauth.AuthJSON(t, c, now)
}

// addClaude gives Claude Code a placeholder token when the egress injects
// the host's for api.anthropic.com. Without one, a placeholder would only
// make every request fail, so the agent is left to log in by itself.
func (b *bundle) addClaude(p *config.Policy) {
	r, ok := p.Route(claudeAPIHost)
	if !ok || r.Auth == nil {
		b.notes = append(b.notes, "no CLAUDE_CODE_OAUTH_TOKEN: the manifest forwards no host login for "+claudeAPIHost+" (forward_host_credentials)")
		return
	}
	// The bottle reaches only its routes: Claude Code's telemetry, error
	// reports and self-update would be refused at the egress (or, for its
	// telemetry to api.anthropic.com, sent under the host's login), so it
	// is told not to try.
	b.env = append(b.env, envVar{"CLAUDE_CODE_OAUTH_TOKEN", ClaudePlaceholderToken},
		envVar{"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"})
	if s, ok := p.Slot(r.Auth.Slot); ok && !s.Present() {
		b.notes = append(b.notes, "the host token is not set yet ("+s.Source.Fix()+"); until then "+claudeAPIHost+" refuses requests with that reason")
	}
}

// envFile renders the variables in docker's --env-file format: KEY=VALUE
// lines taken literally, with no quotes and no export.
func (b *bundle) envFile() []byte {
	var out []byte
	for _, v := range b.env {
		out = append(out, v.key+"="+v.value+"\n"...)
	}
	return out
}
