package dlp

import (
	"fmt"
	"regexp"

	"github.com/coregx/ahocorasick"
)

// maxFindings caps the findings one Scan or Stream keeps: a body stuffed with
// distinct tokens must not grow memory without bound, and a caller has what
// it needs to act long before the cap.
const maxFindings = 256

// Scanner finds secrets in outbound bodies. It is immutable and safe for
// concurrent use; build a new one when the config changes (New compiles the
// automaton once) and swap it in, for instance with an atomic.Pointer.
type Scanner struct {
	ac              *ahocorasick.Automaton
	pats            []pattern // indexed by automaton pattern id
	regexes         []namedRegex
	window          int
	maxDecompressed int64
}

// pattern is what one automaton pattern stands for: a literal's form (a
// ready finding, with the form's encoding) or a format rule's prefix.
type pattern struct {
	finding Finding
	rule    *rule
}

type namedRegex struct {
	name string
	sev  Severity
	re   *regexp.Regexp
}

// New validates cfg and builds the one automaton that holds every literal in
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
	b := ahocorasick.NewBuilder()
	addLiteral := func(kind, name string, sev Severity, v []byte) {
		for _, f := range encodedForms(v) {
			b.AddPattern(f.text)
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
		s.regexes = append(s.regexes, namedRegex{name: p.Name, sev: sev, re: res[i]})
	}
	for i := range rules {
		for _, p := range rules[i].prefixes {
			b.AddPattern([]byte(p))
			s.pats = append(s.pats, pattern{rule: &rules[i]})
		}
	}
	// Overlapping matches are asked for (FindAllOverlapping), so the match
	// kind only matters for non-overlapping searches, which are not used.
	if s.ac, err = b.Build(); err != nil {
		return nil, fmt.Errorf("dlp: building automaton: %w", err)
	}
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

// scanState carries one top-level scan through its decoded layers.
type scanState struct {
	s   *Scanner
	out *findingSet
	// budget is how many decoded bytes may still be scanned. Each layer's
	// output is at most its input, but three decoders over maxDepth layers
	// could multiply the work; four times the input keeps the cost linear.
	budget int
}

func (s *Scanner) scan(buf []byte, out *findingSet, carried bool) {
	st := &scanState{s: s, out: out, budget: 4 * len(buf)}
	st.layer(buf, "", 0, carried)
}

// layer scans buf, whose bytes were wrapped in enc ("" at the top), then the
// decodings of its encoded-looking spans one level deeper.
func (st *scanState) layer(buf []byte, enc string, depth int, carried bool) {
	label := func(inner string) string {
		switch {
		case enc == "":
			return inner
		case inner == encodingPlain:
			return enc
		}
		return enc + "+" + inner
	}
	for _, m := range st.s.ac.FindAllOverlapping(buf) {
		p := &st.s.pats[m.PatternID]
		if p.rule == nil {
			f := p.finding
			f.Encoding = label(f.Encoding)
			st.out.add(f)
			continue
		}
		p.rule.check(buf, m.Start, m.End, func(kind string, sev Severity, tok []byte) {
			st.out.add(Finding{Kind: kind, Encoding: label(encodingPlain), Fingerprint: Fingerprint(tok), Severity: sev})
		})
	}
	for _, r := range st.s.regexes {
		for _, loc := range r.re.FindAllIndex(buf, -1) {
			st.out.add(Finding{Kind: KindPattern, Name: r.name, Encoding: label(encodingPlain),
				Fingerprint: Fingerprint(buf[loc[0]:loc[1]]), Severity: r.sev})
		}
	}
	if depth >= maxDepth {
		return
	}
	for _, d := range []struct {
		name   string
		decode func([]byte) []byte
	}{
		{"json", jsonUnescape},
		{"url", percentDecode},
		{"base64", func(b []byte) []byte { return base64Decode(b, carried) }},
	} {
		dec := d.decode(buf)
		if len(dec) == 0 || len(dec) > st.budget {
			continue
		}
		st.budget -= len(dec)
		st.layer(dec, label(d.name), depth+1, false)
	}
}
