package dlp

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/egressgate/egressgate/config"
)

// MinLiteralLen is the shortest known secret, canary or literal pattern
// accepted. Shorter values would match ordinary text, and their base64 forms
// (which drop up to two bytes at each end, see encodedForms) would be shorter
// still.
const MinLiteralLen = 8

// DefaultMaxDecompressed bounds a compressed body's decoded size when
// Config.MaxDecompressed is zero. Agent requests are tens to hundreds of KiB;
// 16 MiB leaves room for large prompts while keeping a bomb cheap to refuse.
const DefaultMaxDecompressed = 16 << 20

// ErrConfig is wrapped by every error New returns for a bad Config.
var ErrConfig = errors.New("dlp: invalid config")

// Config says what a Scanner looks for besides the well-known formats, which
// are always on.
type Config struct {
	// KnownSecrets are the credential values the egress holds (slot values);
	// seeing one in a request body means the agent got hold of it.
	KnownSecrets []Named
	// Canaries are planted fake credentials; any appearance is high severity.
	Canaries []Named
	// Patterns are extra named literals or regular expressions.
	Patterns []Pattern
	// MaxDecompressed bounds the decoded size of a compressed body
	// (DefaultMaxDecompressed when zero).
	MaxDecompressed int64
}

// Named is a secret value with the name findings report it under. The value
// is a config.Secret so that printing a Config never shows it.
type Named struct {
	Name  string
	Value config.Secret
}

// Pattern is an extra rule: exactly one of Literal and Regex is set. Pattern
// literals and expressions are policy, not secrets, so they are plain strings;
// findings still carry only the fingerprint of the text matched.
type Pattern struct {
	Name    string
	Literal string
	// Regex is RE2 syntax (package regexp). Its matches are found within
	// one scan window (see Scanner.Window), so it should match bounded text.
	// One that starts with a literal ("EGT-[0-9a-f]{32}") is cheapest: with
	// no literal prefix, any JSON escape or percent escape may change what
	// it matches, so a body with one is decoded whole for it.
	Regex    string
	Severity Severity // SeverityMedium when zero
}

// validate reports every problem at once, naming slots, never values.
func (c Config) validate() ([]*regexp.Regexp, error) {
	var errs []error
	check := func(what string, n Named) {
		if n.Name == "" {
			errs = append(errs, fmt.Errorf("%s with no name", what))
		}
		if len(n.Value.Reveal()) < MinLiteralLen {
			errs = append(errs, fmt.Errorf("%s %q is shorter than %d bytes", what, n.Name, MinLiteralLen))
		}
	}
	for _, n := range c.KnownSecrets {
		check("known secret", n)
	}
	for _, n := range c.Canaries {
		check("canary", n)
	}
	res := make([]*regexp.Regexp, len(c.Patterns))
	for i, p := range c.Patterns {
		switch {
		case p.Name == "":
			errs = append(errs, fmt.Errorf("pattern %d has no name", i))
		case (p.Literal == "") == (p.Regex == ""):
			errs = append(errs, fmt.Errorf("pattern %q must set exactly one of literal and regex", p.Name))
		case p.Literal != "" && len(p.Literal) < MinLiteralLen:
			errs = append(errs, fmt.Errorf("pattern %q literal is shorter than %d bytes", p.Name, MinLiteralLen))
		case p.Regex != "":
			re, err := regexp.Compile(p.Regex)
			if err != nil {
				errs = append(errs, fmt.Errorf("pattern %q: %w", p.Name, err))
				continue
			}
			if re.MatchString("") {
				errs = append(errs, fmt.Errorf("pattern %q matches the empty string", p.Name))
			}
			res[i] = re
		}
	}
	if c.MaxDecompressed < 0 {
		errs = append(errs, errors.New("max decompressed size is negative"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	return res, nil
}
