package config

// DLPMode is what the egress does when it finds a secret in what the agent
// sends (issue 13).
type DLPMode string

const (
	// DLPBlock refuses a request carrying any finding. The default: an
	// egress for agents that can be prompt-injected stops exfiltration
	// unless told otherwise, and the rules are made to keep false
	// positives out (see package dlp).
	DLPBlock DLPMode = "block"
	// DLPLog records format and pattern findings and forwards the request.
	// Known secrets and canaries are refused even here: they are never
	// false positives.
	DLPLog DLPMode = "log"
	// DLPOff inspects no body: the route keeps the headers-only path.
	DLPOff DLPMode = "off"
)

// LargeBodyAction is what happens to a request whose body is longer than
// DLP.MaxBody, the part the egress buffers and scans.
type LargeBodyAction string

const (
	// LargeBodyBlock refuses it: padding a body past the limit must not be
	// a way around the scan. The default.
	LargeBodyBlock LargeBodyAction = "block"
	// LargeBodyPass scans the first MaxBody bytes and forwards the rest
	// unscanned; the audit record says so.
	LargeBodyPass LargeBodyAction = "pass"
)

// DefaultDLPMaxBody is DLP.MaxBody when the manifest sets none: Codex sends
// the whole conversation with every turn, so long sessions reach MiBs.
const DefaultDLPMaxBody = 8 << 20

// MaxDLPMaxBody is the largest max_body_bytes a manifest may set. Envoy
// holds up to that much of every request in flight in memory while it is
// scanned, and ext_proc receives it in one message, so the limit bounds
// what a busy agent can make either buffer.
const MaxDLPMaxBody = 64 << 20

// DLPMinLiteralLen is the shortest literal pattern a manifest may name:
// shorter ones match ordinary text. Package dlp refuses the same ones
// (dlp.MinLiteralLen) and must agree; it imports config, so config cannot
// import it, and a test of package config_test checks the two match.
const DLPMinLiteralLen = 8

// DLP is one route's outbound secret detection, the bottle's `dlp` setting
// with the route's own `dlp` overrides applied.
type DLP struct {
	Mode DLPMode
	// LargeBody decides for bodies longer than MaxBody.
	LargeBody LargeBodyAction
	// MaxBody is how many body bytes Envoy buffers for the scan before
	// LargeBody decides.
	MaxBody int64
}

// Enabled reports whether the route's bodies are scanned.
func (d DLP) Enabled() bool { return d.Mode != DLPOff && d.Mode != "" }

// DLPRules are the bottle's detection rules beyond the well-known formats
// and the credentials the egress holds, which are always looked for.
type DLPRules struct {
	// Patterns are extra named literals or regular expressions.
	Patterns []DLPPattern
	// Allow lists fingerprints (12 lower-case hex digits, as refusals
	// show them) that are not findings: a value a person has looked at
	// and let through.
	Allow []string
}

// DLPPattern is an extra rule: exactly one of Literal and Regex is set.
type DLPPattern struct {
	Name    string
	Literal string
	Regex   string // RE2 syntax
}
