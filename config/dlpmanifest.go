package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// dlpPath is the bottle's dlp block.
const dlpPath = "dlp"

// fingerprintRE is a fingerprint as refusals show it: the first 12 hex
// digits of a SHA-256, in lower case (see dlp.Fingerprint).
var fingerprintRE = regexp.MustCompile(`^[0-9a-f]{12}$`)

// dlpOverride is one dlp block's mode, large_body and max_body_bytes; a
// zero field leaves what it is applied to as it was.
type dlpOverride struct {
	mode      DLPMode
	largeBody LargeBodyAction
	maxBody   int64
}

func (o dlpOverride) apply(d DLP) DLP {
	if o.mode != "" {
		d.Mode = o.mode
	}
	if o.largeBody != "" {
		d.LargeBody = o.largeBody
	}
	if o.maxBody != 0 {
		d.MaxBody = o.maxBody
	}
	return d
}

// defaultDLP is the setting of a bottle whose manifest has no dlp block:
// everything intercepted is scanned, and what cannot be scanned whole is
// refused, so exfiltration is stopped unless the manifest says otherwise.
var defaultDLP = DLP{Mode: DLPBlock, LargeBody: LargeBodyBlock, MaxBody: DefaultDLPMaxBody}

// bottleDLP checks the bottle's dlp block and returns its setting, with
// defaults for the keys left out, and its rules.
func (l *loader) bottleDLP(raw *rawDLP) (DLP, DLPRules) {
	if raw == nil {
		return defaultDLP, DLPRules{}
	}
	o := l.dlpSetting(dlpPath, raw.Mode, raw.LargeBody, raw.MaxBodyBytes)
	rules := DLPRules{
		Patterns: l.dlpPatterns(dlpPath+".patterns", raw.Patterns),
		Allow:    l.dlpAllow(dlpPath+".allow", raw.Allow),
	}
	return o.apply(defaultDLP), rules
}

// routeDLP checks a route's dlp block: what it changes of the bottle's.
// Invalid values change nothing (they are reported, and the policy is
// discarded anyway).
func (l *loader) routeDLP(path string, raw *rawRouteDLP) dlpOverride {
	if raw == nil {
		return dlpOverride{}
	}
	return l.dlpSetting(path, raw.Mode, raw.LargeBody, raw.MaxBodyBytes)
}

func (l *loader) dlpSetting(path, mode, largeBody string, maxBody *int64) dlpOverride {
	var o dlpOverride
	switch m := DLPMode(mode); m {
	case "":
	case DLPBlock, DLPLog, DLPOff:
		o.mode = m
	default:
		l.errorf(path+".mode", "%q is not one of block, log, off", mode)
	}
	switch a := LargeBodyAction(largeBody); a {
	case "":
	case LargeBodyBlock, LargeBodyPass:
		o.largeBody = a
	default:
		l.errorf(path+".large_body", "%q is not one of block, pass", largeBody)
	}
	if maxBody != nil {
		if *maxBody < 1 || *maxBody > MaxDLPMaxBody {
			l.errorf(path+".max_body_bytes", "must be from 1 to %d (64 MiB), not %d", MaxDLPMaxBody, *maxBody)
		} else {
			o.maxBody = *maxBody
		}
	}
	return o
}

// passthroughDLP rejects a passthrough route's dlp keys that ask for a
// scan: Envoy sees only ciphertext in the tunnel. mode: off says what is
// true anyway, so it is accepted. An invalid mode is already reported.
func (l *loader) passthroughDLP(path string, raw *rawRouteDLP) {
	if raw == nil {
		return
	}
	const why = "tls: passthrough routes cannot be inspected; Envoy sees only the tunnel's encrypted bytes"
	if m := DLPMode(raw.Mode); m == DLPBlock || m == DLPLog {
		l.errorf(path+".mode", "%s, so set mode: off or leave dlp out, or intercept the host to scan it", why)
	}
	if raw.LargeBody != "" {
		l.errorf(path+".large_body", "%s: there is no body to decide for; leave large_body out", why)
	}
	if raw.MaxBodyBytes != nil {
		l.errorf(path+".max_body_bytes", "%s: there is no body to buffer; leave max_body_bytes out", why)
	}
}

// dlpPatterns checks the bottle's extra rules with the checks package dlp
// makes when it builds a scanner, so a manifest that loads never fails
// there, and more: names are unique and spelled like the bottle's name,
// because findings and audit records are labelled with them.
func (l *loader) dlpPatterns(path string, raws []rawDLPPattern) []DLPPattern {
	if len(raws) == 0 {
		return nil
	}
	out := make([]DLPPattern, 0, len(raws))
	first := map[string]string{} // name → path of the pattern naming it first
	for i, p := range raws {
		at := fmt.Sprintf("%s[%d]", path, i)
		if l.required(at+".name", p.Name) {
			if !nameRE.MatchString(p.Name) {
				l.errorf(at+".name", "%q may hold only a-z, 0-9 and -", p.Name)
			} else if prev, dup := first[p.Name]; dup {
				l.errorf(at+".name", "%s is already the name of %s; give each pattern its own name", p.Name, prev)
			} else {
				first[p.Name] = at
			}
		}
		l.dlpPatternRule(at, p)
		out = append(out, DLPPattern(p))
	}
	return out
}

// dlpPatternRule checks that a pattern has exactly one rule, and that it
// finds something without finding everything. The literal is never
// echoed: it is what the egress looks for in agent traffic, and errors
// reach logs.
func (l *loader) dlpPatternRule(path string, p rawDLPPattern) {
	litPath, rePath := path+".literal", path+".regex"
	switch {
	case p.Literal != "" && p.Regex != "":
		l.errorf(rePath, "set literal or regex, not both")
	case p.Literal != "":
		if len(p.Literal) < DLPMinLiteralLen {
			l.errorf(litPath, "is %d bytes; a literal needs at least %d, or it matches ordinary text", len(p.Literal), DLPMinLiteralLen)
		}
	case p.Regex != "":
		re, err := regexp.Compile(p.Regex)
		switch {
		case err != nil:
			l.errorf(rePath, "is not an RE2 expression (Go's regexp syntax): %s", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		case re.MatchString(""):
			l.errorf(rePath, "matches the empty string, so it would find something in every body; make it match at least one character")
		}
	case !l.doc.isBad(litPath) && !l.doc.isBad(rePath):
		l.errorf(path, "set literal (an exact string) or regex (an RE2 expression)")
	}
}

// dlpAllow checks the allowed fingerprints and drops repeats. An entry
// that is not a fingerprint is never echoed: it may be the value itself,
// pasted where its fingerprint belongs.
func (l *loader) dlpAllow(path string, raws []string) []string {
	var out []string
	for i, a := range raws {
		if !fingerprintRE.MatchString(a) {
			if !l.doc.isBad(fmt.Sprintf("%s[%d]", path, i)) {
				l.errorf(fmt.Sprintf("%s[%d]", path, i), "must be a fingerprint as refusals show it, 12 lower-case hex digits, never the value itself")
			}
			continue
		}
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}
