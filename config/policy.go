// Package config turns a bottle manifest and the host credential sources it
// names into one validated, immutable Policy. It is the only package that
// reads those files; everything downstream trusts a Policy.
package config

import (
	"fmt"
	"slices"
	"time"
)

// Policy is the compiled form of one bottle's manifest plus its host
// credentials. It is immutable once returned by Load: callers share it
// across goroutines and swap whole Policies, never fields.
type Policy struct {
	// Name is the bottle name and the Envoy node id.
	Name string
	// Template is the agent provider template: "codex", "claude" or "none".
	Template string
	// ForwardHostCredentials mirrors agent_provider.forward_host_credentials.
	ForwardHostCredentials bool
	// RefreshHostCredentials mirrors agent_provider.refresh_host_credentials:
	// egressgate keeps the host's Codex login fresh itself.
	RefreshHostCredentials bool
	// Routes are sorted by Host; hosts are unique.
	Routes []Route
	// Slots are in slot order: Slots[i].Name == SlotName(i).
	Slots []Slot
	// DLPRules are the bottle's extra detection rules and allowed
	// fingerprints; each route's DLP says whether and how they apply.
	DLPRules DLPRules
	// Manifest is the path the policy was compiled from.
	Manifest string
	// Inputs are the absolute paths of every file whose change calls for a
	// reload, sorted and unique: the manifest, each upstream.ca_file, each
	// token_file (missing ones too, so their appearance is seen) and the
	// Codex auth.json while it is forwarded.
	Inputs []string

	// hostLoginErrors are the host login problems as start-up errors, at
	// the manifest line naming the login (see HostLoginError).
	hostLoginErrors []Error
	// warnings, at their manifest lines (see Warnings).
	warnings []Error
}

// Warnings are what a valid policy will refuse that its author likely did
// not mean it to: an empty route list, a token_ref whose variable is unset
// or empty now. Validating prints them; they never stop a start.
func (p *Policy) Warnings() []Error { return slices.Clone(p.warnings) }

// HostLoginError reports a forwarded host login that cannot be used now
// (gone, expired, not a ChatGPT login) as *Errors at the manifest line
// that forwards it, or nil. Load does not fail for it: a running egress
// must revoke a login that goes away, not keep serving the last one, so
// the slot is just empty (Slot.Problem says why). Starting up, validating
// and writing an agent's files are different: there, a login that cannot
// work is an error the person fixes first.
func (p *Policy) HostLoginError() error {
	if len(p.hostLoginErrors) == 0 {
		return nil
	}
	return &Errors{List: slices.Clone(p.hostLoginErrors)}
}

// TLSMode says whether Envoy terminates TLS for a host or tunnels it.
type TLSMode string

const (
	Intercept   TLSMode = "intercept"
	Passthrough TLSMode = "passthrough"
)

// Route is everything the egress allows for one upstream host.
type Route struct {
	Host string
	TLS  TLSMode
	// Auth is nil for a route that injects no credential.
	Auth *Auth
	// Matches narrows what the route allows; empty allows every path and
	// method on the host.
	Matches  []Match
	Upstream Upstream
	// DLP is the route's outbound secret detection: the bottle's dlp
	// setting with the route's overrides applied. Only intercepted routes
	// can be inspected; a passthrough route's is off.
	DLP DLP
}

// Auth binds a route to the credential slot injected into its requests.
type Auth struct {
	// Scheme is the Authorization scheme word: "Bearer" or "token"; empty
	// when Header is set.
	Scheme string
	// Header, when set, is the (lower-case) header that carries the raw
	// value instead of Authorization, e.g. "x-api-key".
	Header string
	// Slot is the slot name, e.g. "EGRESS_TOKEN_0".
	Slot string
}

// Match allows requests whose path matches one of Paths (any path when
// empty) and whose method is one of Methods (any method when empty).
type Match struct {
	Paths   []PathMatch
	Methods []string // upper case
	// Answer, when set, is a reply egressgate makes itself: the request
	// never reaches the upstream.
	Answer *Answer
}

// AnswerCodexRefresh answers Codex's OAuth refresh (POST
// auth.openai.com/oauth/token) with fresh placeholder tokens mirroring the
// host's current login, so the agent never needs the real refresh token.
const AnswerCodexRefresh = "codex-refresh"

// Answer is a reply egressgate makes in place of the upstream.
type Answer struct {
	Kind string // AnswerCodexRefresh
	// Slot holds the host credential the answer is made from.
	Slot string
}

// PathType is how a PathMatch compares the request path.
type PathType string

const (
	PathPrefix PathType = "prefix"
	PathExact  PathType = "exact"
)

// PathMatch is one allowed path rule.
type PathMatch struct {
	Type  PathType
	Value string
}

// Upstream says where Envoy connects for a host and which CA it trusts.
type Upstream struct {
	// Address is "host:port" to connect to instead of Host:443 (tests,
	// private mirrors). Empty means Host:443 resolved by Envoy.
	Address string
	// CAFile is the manifest's upstream.ca_file, resolved to an absolute
	// path; kept for display only.
	CAFile string
	// CAPEM holds the contents of CAFile; nil means the system roots.
	CAPEM []byte
}

// SourceKind names where a slot's value comes from.
type SourceKind string

const (
	// SourceEnv is a host environment variable named by token_ref.
	SourceEnv SourceKind = "env"
	// SourceCodex is the host's Codex ChatGPT login ($CODEX_HOME/auth.json).
	SourceCodex SourceKind = "codex"
	// SourceFile is a host file holding only the token, named by token_file.
	SourceFile SourceKind = "file"
	// SourceClaude is the host's Claude Code login
	// ($CLAUDE_CONFIG_DIR/.credentials.json).
	SourceClaude SourceKind = "claude"
)

// Source identifies one host credential source. Routes naming the same
// Source share one slot.
type Source struct {
	Kind SourceKind
	// Ref is the env var name (SourceEnv), the auth.json path (SourceCodex)
	// or the token file's absolute path (SourceFile).
	Ref string
}

func (s Source) String() string {
	switch s.Kind {
	case SourceEnv:
		return "env " + s.Ref
	case SourceCodex:
		return "codex " + s.Ref
	case SourceFile:
		return "file " + s.Ref
	case SourceClaude:
		return "claude " + s.Ref
	default:
		return string(s.Kind) + " " + s.Ref
	}
}

// Describe names the source for the agent and the person reading its
// output: what it is, never where on the host it lives.
func (s Source) Describe() string {
	switch s.Kind {
	case SourceEnv:
		return "the host variable " + s.Ref
	case SourceCodex:
		return "the host's Codex login"
	case SourceFile:
		return "the host's token file"
	case SourceClaude:
		return "the host's Claude Code login"
	default:
		return "the host credential"
	}
}

// AgentFix is Fix for the agent's eyes: refusal bodies carry it, so it
// names no host path (and, like Fix, no secret).
func (s Source) AgentFix() string {
	if s.Kind == SourceFile {
		return "write the token to the token_file the bottle's manifest names, on the host"
	}
	return s.Fix()
}

// Fix is the one thing a person does on the host to give this source a
// valid value, for the host's logs and status; it may name a host path.
// It names no secret.
func (s Source) Fix() string {
	switch s.Kind {
	case SourceEnv:
		return fmt.Sprintf("set %s in egressgate's environment on the host and restart egressgate", s.Ref)
	case SourceCodex:
		return "run `codex login --device-auth` on the host"
	case SourceClaude:
		return claudeFix
	case SourceFile:
		// No restart: the file is watched, so writing it is enough.
		return fmt.Sprintf("write the token to %s on the host", s.Ref)
	default:
		return "check the credential source on the host"
	}
}

// Slot is one credential value held by egressgate on behalf of the agent.
type Slot struct {
	Name   string // EGRESS_TOKEN_N
	Source Source
	Value  Secret
	// Expiry is when Value stops being valid; zero when unknown.
	Expiry time.Time
	// Problem, for an empty slot whose source is there but unusable (a
	// host login deleted, logged out, switched to an API key, unreadable),
	// is why, for the host's operator: it may name host paths, so it goes
	// to logs and status, never to the agent.
	Problem string
}

// SlotName returns the name of the i-th slot.
func SlotName(i int) string { return fmt.Sprintf("EGRESS_TOKEN_%d", i) }

// Present reports whether the slot holds a value.
func (s Slot) Present() bool { return !s.Value.Empty() }

// Expired reports whether the slot's value has expired at now.
func (s Slot) Expired(now time.Time) bool {
	return !s.Expiry.IsZero() && !now.Before(s.Expiry)
}

// LoggedOut reports whether the slot is empty because its source, a host
// login, went away or became unusable: the person must log in again on the
// host, rather than set something for the first time.
func (s Slot) LoggedOut() bool { return !s.Present() && s.Problem != "" }

// String is the slot as it may appear in logs, status and errors.
func (s Slot) String() string {
	if !s.Present() {
		return fmt.Sprintf("<empty:%s>", s.Name)
	}
	if s.Expiry.IsZero() {
		return fmt.Sprintf("<redacted:%s>", s.Name)
	}
	return fmt.Sprintf("<redacted:%s exp=%s>", s.Name, s.Expiry.UTC().Format(time.RFC3339))
}

// alwaysStripped are the credential headers removed from every agent
// request: the two Authorization headers, and the API-key header most
// model APIs accept.
var alwaysStripped = []string{"authorization", "proxy-authorization", "x-api-key"}

// StripHeaders is every header removed from agent requests on every route
// of the bottle: the usual credential headers plus each header any route
// injects, so an agent cannot smuggle its own value in one of them.
func (p *Policy) StripHeaders() []string {
	out := slices.Clone(alwaysStripped)
	for _, r := range p.Routes {
		if r.Auth != nil && r.Auth.Header != "" && !slices.Contains(out, r.Auth.Header) {
			out = append(out, r.Auth.Header)
		}
	}
	slices.Sort(out)
	return out
}

// Slot returns the slot with the given name.
func (p *Policy) Slot(name string) (Slot, bool) {
	for _, s := range p.Slots {
		if s.Name == name {
			return s, true
		}
	}
	return Slot{}, false
}

// Route returns the route for host.
func (p *Policy) Route(host string) (Route, bool) {
	for _, r := range p.Routes {
		if r.Host == host {
			return r, true
		}
	}
	return Route{}, false
}
