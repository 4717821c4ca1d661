package dlp

import (
	"regexp"
)

// maxFindings caps the findings one Scan or Stream keeps: a body stuffed with
// distinct tokens must not grow memory without bound, and a caller has what
// it needs to act long before the cap.
const maxFindings = 256

// Scanner finds secrets in outbound bodies. It is immutable and safe for
// concurrent use; build a new one when the config changes (New builds the
// matcher once) and swap it in, for instance with an atomic.Pointer.
type Scanner struct {
	m               *matcher
	pats            []pattern // indexed by matcher pattern id
	regexes         []namedRegex
	window          int
	maxDecompressed int64
	// litBytes are the bytes of the literals and of the regexes' literal
	// prefixes: a JSON escape of one of them is decoded (see jsonRegions).
	litBytes [256]bool
	// rePrefixBytes are the bytes of the regexes' literal prefixes.
	rePrefixBytes [256]bool
	// sepEscape marks the bytes that make a two-byte JSON escape with a
	// backslash before them and decode to a separator, none of litBytes:
	// the escapes jsonRegions passes over.
	sepEscape [256]bool
	// sepBackslash marks the bytes that leave an escaped backslash before
	// them ("\\\\x") a separator: not '/' or 'u' (see revealing), and none
	// when a literal has a backslash.
	sepBackslash [256]bool
	// minText is the shortest stretch of text a base64 layer keeps of its
	// decoding, 0 to keep all of it (see keepText).
	minText int
}

// pattern is what one matcher pattern stands for: a literal's form (a
// ready finding, with the form's encoding) or a format rule's prefix.
type pattern struct {
	finding Finding
	rule    *rule
}

type namedRegex struct {
	name string
	sev  Severity
	re   *regexp.Regexp
	// prefix is the literal every match starts with, "" when there is none.
	prefix string
}

// New validates cfg and builds the one matcher that holds every literal in
// every precomputed encoding and every format rule's prefixes.
func New(cfg Config) (*Scanner, error) {
	res, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	s := &Scanner{window: formatWindow, maxDecompressed: cfg.MaxDecompressed}
	if s.maxDecompressed == 0 {
		s.maxDecompressed = DefaultMaxDecompressed
	}
	var texts [][]byte
	var wordStart []bool
	addLiteral := func(kind, name string, sev Severity, v []byte) {
		for _, b := range v {
			s.litBytes[b] = true
		}
		for _, f := range encodedForms(v) {
			texts = append(texts, f.text)
			wordStart = append(wordStart, false)
			s.pats = append(s.pats, pattern{finding: Finding{
				Kind: kind, Name: name, Encoding: f.encoding, Fingerprint: Fingerprint(v), Severity: sev,
			}})
			s.window = max(s.window, len(f.text))
		}
	}
	for _, n := range cfg.KnownSecrets {
		addLiteral(KindKnownSecret, n.Name, SeverityHigh, []byte(n.Value.Reveal()))
	}
	for _, n := range cfg.Canaries {
		addLiteral(KindCanary, n.Name, SeverityHigh, []byte(n.Value.Reveal()))
	}
	for i, p := range cfg.Patterns {
		sev := p.Severity
		if sev == 0 {
			sev = SeverityMedium
		}
		if p.Literal != "" {
			addLiteral(KindPattern, p.Name, sev, []byte(p.Literal))
			continue
		}
		prefix, _ := res[i].LiteralPrefix()
		for _, b := range []byte(prefix) {
			s.litBytes[b] = true
			s.rePrefixBytes[b] = true
		}
		s.regexes = append(s.regexes, namedRegex{name: p.Name, sev: sev, re: res[i], prefix: prefix})
	}
	for i := range rules {
		for _, p := range rules[i].prefixes {
			texts = append(texts, []byte(p))
			wordStart = append(wordStart, rules[i].wordStart)
			s.pats = append(s.pats, pattern{rule: &rules[i]})
		}
	}
	for _, c := range []byte(`nrtbf"`) {
		r, _ := unescapeAt([]byte{'\\', c})
		s.sepEscape[c] = !s.litBytes[r]
	}
	for c := range 256 {
		s.sepBackslash[c] = c != '/' && c != 'u' && !s.litBytes['\\']
	}
	var forms [][]byte
	for id, p := range s.pats {
		if p.rule == nil {
			forms = append(forms, texts[id])
		}
	}
	s.minText = minText(forms, s.regexes)
	s.m = newMatcher(texts, wordStart)
	return s, nil
}

// Window is the tail, in bytes, a Stream keeps between chunks: a secret (in
// any precomputed form) or format token no longer than this is found however
// the body is split. It is the larger of 4 KiB and the longest literal form.
func (s *Scanner) Window() int { return s.window }

// Scan returns the secrets in an uncompressed body, at most one finding per
// distinct secret, in the order first seen.
func (s *Scanner) Scan(body []byte) []Finding {
	var set findingSet
	s.scan(body, &set, false)
	return set.list
}

// ScanEncoded scans a body sent with the given Content-Encoding ("",
// "identity", "gzip", "x-gzip", "deflate", "br" or "zstd"). A body that decodes past
// Config.MaxDecompressed returns ErrTooLarge with the findings up to there.
func (s *Scanner) ScanEncoded(body []byte, contentEncoding string) ([]Finding, error) {
	st, err := s.NewEncodedStream(contentEncoding)
	if err != nil {
		return nil, err
	}
	if _, err := st.Write(body); err != nil {
		_, _ = st.Close()
		return st.Findings(), err
	}
	return st.Close()
}
