// Package leakcheck finds pieces of credentials in generated output. Tests
// use it to prove that what an agent is given holds no part of a host
// credential, including inside the JWTs it is given.
package leakcheck

import (
	"encoding/base64"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// MinRun is the length of the shortest piece of a secret that counts as a
// leak. Shorter runs turn up by chance: every JWT starts with the same 11
// characters, eyJhbGciOiJ.
const MinRun = 12

// Outputs splits one output text into what is checked for secrets: the
// text with each JWT in it replaced by a marker (keyed name), and each
// JWT's header and payload decoded and its signature part as is (keyed
// "name jwt[i] header", "… payload", "… signature").
//
// The JWTs are checked in decoded form, not as base64, because the
// placeholders must carry public claim names that real tokens carry too
// ("https://api.openai.com/auth":{"chatgpt_account_id":…), and two base64
// texts share long runs wherever the same JSON falls at the same offset
// modulo 3. Decoded, a copied claim shows up as itself.
func Outputs(name, text string) map[string]string {
	masked, jwts := splitJWTs(text)
	out := map[string]string{name: masked}
	for i, tok := range jwts {
		key := name + " jwt[" + strconv.Itoa(i) + "] "
		parts := strings.Split(tok, ".")
		for j, part := range []string{"header", "payload"} {
			b, err := base64.RawURLEncoding.DecodeString(parts[j])
			if err != nil {
				b = []byte(parts[j]) // not base64 after all: check it as is
			}
			out[key+part] = string(b)
		}
		out[key+"signature"] = parts[2]
	}
	return out
}

// Texts returns the Outputs of every regular file under dir, named by
// slash-separated paths relative to dir.
func Texts(dir string) (map[string]string, error) {
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		for k, v := range Outputs(filepath.ToSlash(rel), string(data)) {
			out[k] = v
		}
		return nil
	})
	return out, err
}

// Leak returns a run of at least MinRun characters of secret, or of one of
// its long claim values when secret is a JWT, that occurs in text; "" when
// there is none. Claim values listed in copied are the facts a placeholder
// carries on purpose, and are not looked for.
func Leak(text, secret string, copied ...string) string {
	for _, p := range append([]string{secret}, claimValues(secret, copied)...) {
		if run := Find(text, p, MinRun); run != "" {
			return run
		}
	}
	return ""
}

// claimValues returns the string claim values of MinRun or more
// characters in a JWT's payload, except those in copied; none when secret
// is not a JWT.
func claimValues(secret string, copied []string) []string {
	if !isJWT(secret) {
		return nil
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(secret, ".")[1])
	var claims any
	if err != nil || json.Unmarshal(payload, &claims) != nil {
		return nil
	}
	var out []string
	for _, v := range stringValues(claims) {
		if len(v) >= MinRun && !slices.Contains(copied, v) {
			out = append(out, v)
		}
	}
	return out
}

// stringValues returns every string in a decoded JSON value, at any depth.
func stringValues(v any) []string {
	var out []string
	switch v := v.(type) {
	case string:
		out = append(out, v)
	case []any:
		for _, e := range v {
			out = append(out, stringValues(e)...)
		}
	case map[string]any:
		for _, e := range v {
			out = append(out, stringValues(e)...)
		}
	}
	return out
}

// Find returns the first run of n bytes of secret that occurs in text, or
// "" when there is none. A secret shorter than n is looked for whole.
func Find(text, secret string, n int) string {
	if len(secret) < n {
		if secret != "" && strings.Contains(text, secret) {
			return secret
		}
		return ""
	}
	for i := 0; i+n <= len(secret); i++ {
		if strings.Contains(text, secret[i:i+n]) {
			return secret[i : i+n]
		}
	}
	return ""
}

// splitJWTs returns text with every JWT replaced by "<jwt[i]>", and the
// JWTs in order.
func splitJWTs(text string) (string, []string) {
	var b strings.Builder
	var jwts []string
	for len(text) > 0 {
		i := strings.IndexFunc(text, isWordChar)
		if i < 0 {
			b.WriteString(text)
			break
		}
		b.WriteString(text[:i])
		text = text[i:]
		end := strings.IndexFunc(text, func(r rune) bool { return !isWordChar(r) })
		if end < 0 {
			end = len(text)
		}
		word := text[:end]
		text = text[end:]
		if isJWT(word) {
			b.WriteString("<jwt[" + strconv.Itoa(len(jwts)) + "]>")
			jwts = append(jwts, word)
			continue
		}
		b.WriteString(word)
	}
	return b.String(), jwts
}

// isJWT reports whether s is a compact JWS: three base64url parts joined
// by dots, the first starting "ey" ("{" encoded).
func isJWT(s string) bool {
	parts := strings.Split(s, ".")
	return len(parts) == 3 && strings.HasPrefix(parts[0], "ey") && parts[1] != ""
}

// isWordChar reports whether r can be part of a JWT.
func isWordChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
}
