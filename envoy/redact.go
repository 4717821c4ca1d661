package envoy

import "regexp"

// tokenPattern matches what Envoy may echo of a credential: a JWT (its
// header is base64url JSON, so it starts with "eyJ", the encoding of `{"`)
// or whatever follows "Bearer". Envoy's error for a bootstrap it cannot
// parse quotes the whole bootstrap, xDS token included.
var tokenPattern = regexp.MustCompile(`eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*|(?i:bearer)\s+[A-Za-z0-9._~+/=-]+`)

// redactTokens replaces every token in Envoy output with a marker, so that
// output can be quoted in errors and logs (DESIGN security invariant 4).
func redactTokens(s string) string {
	return tokenPattern.ReplaceAllString(s, "<redacted>")
}
