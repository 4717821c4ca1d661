package dlp

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// Severity ranks a finding so a caller can choose to log, alert or refuse.
type Severity int

// Severities, lowest first. The zero value is not a severity, so a Pattern
// that leaves it unset gets the default (SeverityMedium) instead of "none".
const (
	SeverityLow Severity = iota + 1
	SeverityMedium
	SeverityHigh
)

func (s Severity) String() string {
	switch s {
	case SeverityLow:
		return "low"
	case SeverityMedium:
		return "medium"
	case SeverityHigh:
		return "high"
	}
	return fmt.Sprintf("severity(%d)", int(s))
}

// Finding kinds. The well-known formats name the issuer so an operator knows
// which credential to revoke.
const (
	KindKnownSecret     = "known-secret"
	KindCanary          = "canary"
	KindPattern         = "pattern"
	KindAWSAccessKeyID  = "aws-access-key-id"
	KindAWSSecretKey    = "aws-secret-access-key"
	KindGitHubToken     = "github-token"
	KindOpenAIKey       = "openai-api-key"
	KindAnthropicKey    = "anthropic-api-key"
	KindSlackToken      = "slack-token"
	KindSlackWebhook    = "slack-webhook"
	KindPrivateKey      = "private-key"
	KindJWT             = "jwt"
	encodingPlain       = "plain"
	fingerprintHexChars = 12
)

// Finding is one secret seen in outbound data. It deliberately holds no part
// of the secret: it is logged, audited and shown to operators, so it carries
// only a fingerprint that identifies a value without revealing it.
type Finding struct {
	// Kind is what was found: KindKnownSecret, KindCanary, KindPattern or a
	// well-known format such as KindGitHubToken.
	Kind string
	// Name is the known secret's slot, the canary's or the pattern's name;
	// empty for well-known formats.
	Name string
	// Encoding is how the secret was wrapped, outermost first and joined by
	// "+": "plain", "base64", "url", "json", "gzip+json+base64", ….
	Encoding string
	// Fingerprint is the first 12 hex digits of the SHA-256 of the secret's
	// value (see Fingerprint).
	Fingerprint string
	Severity    Severity
}

// String prints every field; none of them can hold the secret.
func (f Finding) String() string {
	s := f.Kind
	if f.Name != "" {
		s += " " + f.Name
	}
	return fmt.Sprintf("%s encoding=%s fingerprint=%s severity=%s", s, f.Encoding, f.Fingerprint, f.Severity)
}

// Fingerprint returns the first 12 hex digits (48 bits) of the SHA-256 of v.
// That is enough to tell which configured secret leaked and to correlate one
// token across findings and logs, and reveals nothing usable about a long
// random token. A short, guessable value could be recovered by hashing
// guesses, which is one reason New refuses literals under MinLiteralLen.
func Fingerprint(v []byte) string {
	sum := sha256.Sum256(v)
	return hex.EncodeToString(sum[:])[:fingerprintHexChars]
}

// findingKey identifies a finding regardless of encoding, so one secret sent
// twice (or seen once plain and again in a decoded copy of the same bytes) is
// reported once, with the encoding of its first, shallowest appearance.
type findingKey struct{ kind, name, fingerprint string }

// findingSet collects findings in the order they were first seen.
type findingSet struct {
	seen map[findingKey]bool
	list []Finding
}

func (fs *findingSet) add(f Finding) {
	k := findingKey{f.Kind, f.Name, f.Fingerprint}
	if fs.seen[k] || len(fs.list) >= maxFindings {
		return
	}
	if fs.seen == nil {
		fs.seen = make(map[findingKey]bool)
	}
	fs.seen[k] = true
	fs.list = append(fs.list, f)
}
