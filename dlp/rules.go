package dlp

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"hash/crc32"
	"strings"
)

// emitFunc reports a token a rule matched; the scanner fingerprints it.
type emitFunc func(kind string, sev Severity, token []byte)

// rule is a well-known credential format. The matcher finds its fixed
// prefixes; check then validates the bytes around the match (length,
// charset, checksum, structure) so that prose mentioning a prefix is not a
// finding. start and end delimit the prefix match in buf.
type rule struct {
	prefixes []string
	// wordStart marks a rule that reports only tokens starting a word (the
	// byte before, JSON escapes decoded, is not a word byte; for a JWT, not
	// base64url or '.') and running on for at least minTokenRun bytes of
	// [A-Za-z0-9_-]. The matcher looks for its prefixes only where such a
	// token can start, which is what lets it skip most of a body; a rule
	// without it has prefixes of 11 bytes or more, found anywhere.
	wordStart bool
	check     func(buf []byte, start, end int, emit emitFunc)
}

// rules are the well-known formats, always on.
var rules = []rule{
	{prefixes: []string{"AKIA", "ASIA"}, wordStart: true, check: checkAWSKeyID},
	{prefixes: []string{"aws_secret_access_key", "AWS_SECRET_ACCESS_KEY", "SecretAccessKey", "secretAccessKey"}, check: checkAWSSecretKeyword},
	{prefixes: []string{"ghp_", "gho_", "ghu_", "ghs_", "ghr_"}, wordStart: true, check: checkGitHubToken},
	{prefixes: []string{"github_pat_"}, wordStart: true, check: checkGitHubPAT},
	{prefixes: []string{"sk-"}, wordStart: true, check: checkOpenAIKey},
	{prefixes: []string{"sk-ant-"}, wordStart: true, check: checkAnthropicKey},
	{prefixes: []string{"xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-"}, wordStart: true, check: checkSlackToken},
	{prefixes: []string{"hooks.slack.com/services/"}, check: checkSlackWebhook},
	{prefixes: []string{"-----BEGIN "}, check: checkPrivateKey},
	{prefixes: []string{"eyJ"}, wordStart: true, check: checkJWT},
}

// formatWindow is the longest token a format rule needs to see whole, and so
// the least tail a Stream keeps between chunks. It covers a PEM header with
// enough body to validate, every fixed-length token, and JWTs up to 4 KiB
// (ChatGPT access tokens are about 2 KiB).
const formatWindow = 4096

func isUpper(c byte) bool   { return 'A' <= c && c <= 'Z' }
func isLower(c byte) bool   { return 'a' <= c && c <= 'z' }
func isDigit(c byte) bool   { return '0' <= c && c <= '9' }
func isAlnum(c byte) bool   { return isUpper(c) || isLower(c) || isDigit(c) }
func isWord(c byte) bool    { return isAlnum(c) || c == '_' }
func isB64URL(c byte) bool  { return isAlnum(c) || c == '-' || c == '_' }
func isB64Std(c byte) bool  { return isAlnum(c) || c == '+' || c == '/' }
func isBase32U(c byte) bool { return isUpper(c) || ('2' <= c && c <= '7') }

// wordBefore reports whether buf[at] continues a word, in which case a
// prefix found there is part of a longer identifier ("task-", "MAKIAGE").
func wordBefore(buf []byte, at int) bool { return at > 0 && isWord(prevByte(buf, at)) }

// prevByte returns the byte before buf[at] (at > 0) as a JSON decoder would
// see it: the decoded escape when an escape ends there ('\n' in "\nghp_…"
// is a line break, not an 'n' glued to the token), 0x80 for an escape of
// any non-ASCII character. The bodies scanned are mostly JSON, full of
// escaped line breaks, and a token is as much a token after one of those
// as after a real one; reading the escape here saves decoding the body to
// find it. A backslash that is itself escaped ("\\n") makes no difference:
// the next decoding would turn the rest into the escape.
func prevByte(buf []byte, at int) byte {
	if at >= 2 && buf[at-2] == '\\' {
		if r, n := unescapeAt(buf[at-2 : at]); n == 2 {
			return byte(r)
		}
	}
	if at >= 6 && buf[at-6] == '\\' && buf[at-5] == 'u' {
		if r, ok := hex4(buf[at-4 : at]); ok {
			return asciiOr80(r)
		}
	}
	return buf[at-1]
}

// asciiOr80 returns r if it is ASCII, else 0x80, a byte no rule counts as
// part of a token.
func asciiOr80(r rune) byte {
	if r < 0x80 {
		return byte(r)
	}
	return 0x80
}

// runEnd returns the end of the run of bytes satisfying ok from i.
func runEnd(buf []byte, i int, ok func(byte) bool) int {
	for i < len(buf) && ok(buf[i]) {
		i++
	}
	return i
}

// all reports whether every byte of b satisfies ok.
func all(b []byte, ok func(byte) bool) bool {
	return runEnd(b, 0, ok) == len(b)
}

// mixed reports whether b has an upper-case letter, a lower-case letter and a
// digit, as random tokens of 40 or more base62 characters almost always do
// and identifiers, hex hashes and words do not.
func mixed(b []byte) bool {
	var u, l, d bool
	for _, c := range b {
		u, l, d = u || isUpper(c), l || isLower(c), d || isDigit(c)
	}
	return u && l && d
}

// fixed returns buf[start:start+n] when every byte satisfies ok and the token
// is not followed by more word bytes, else nil.
func fixed(buf []byte, start, n int, ok func(byte) bool) []byte {
	end := start + n
	if end > len(buf) || !all(buf[start:end], ok) || (end < len(buf) && isWord(buf[end])) {
		return nil
	}
	return buf[start:end]
}

// checkAWSKeyID: AKIA (long-term) or ASIA (temporary) and 16 characters of
// the base32 alphabet (A-Z, 2-7), as AWS key ids are. AWS's documentation
// example (…EXAMPLE) is skipped: it appears in code and docs, never works.
func checkAWSKeyID(buf []byte, start, end int, emit emitFunc) {
	if wordBefore(buf, start) {
		return
	}
	tok := fixed(buf, start, 20, isBase32U)
	if tok == nil || bytes.HasSuffix(tok, []byte("EXAMPLE")) {
		return
	}
	emit(KindAWSAccessKeyID, SeverityHigh, tok)
	// A secret access key has no prefix of its own; next to a key id (in a
	// credentials file, an env dump, a JSON config) a 40-character run is one.
	findAWSSecret(buf, start, start+20, 256, emit)
}

// checkAWSSecretKeyword: a secret access key named by its usual key.
func checkAWSSecretKeyword(buf []byte, start, end int, emit emitFunc) {
	findAWSSecret(buf, end, end, 64, emit)
}

// findAWSSecret reports 40-character runs of the standard base64 alphabet
// within reach characters before lo or after hi that are whole (not cut
// from a longer run) and mixed-case with digits, which rules out hex hashes
// (git SHA-1 is 40 hex digits) and words. Reach counts decoded characters:
// it is widened by five bytes for each backslash in it, as much as a JSON
// escape can add (up to twice the reach), and a run right after an escape
// ("\n…") starts after it.
func findAWSSecret(buf []byte, lo, hi, reach int, emit emitFunc) {
	from, to := max(lo-reach, 0), min(hi+reach, len(buf))
	from = max(from-min(5*bytes.Count(buf[from:lo], []byte{'\\'}), reach), 0)
	to = min(to+min(5*bytes.Count(buf[hi:to], []byte{'\\'}), reach), len(buf))
	for i := from; i < to; {
		if !isB64Std(buf[i]) {
			i++
			continue
		}
		j := runEnd(buf, i, isB64Std)
		check := func(tok []byte, whole bool) {
			if whole && len(tok) == 40 && mixed(tok) && !bytes.Contains(tok, []byte("EXAMPLE")) {
				emit(KindAWSSecretKey, SeverityHigh, tok)
			}
		}
		check(buf[i:j], i == 0 || !isB64Std(buf[i-1]))
		if s := afterEscape(buf, i); s != i && s < j {
			check(buf[s:j], !isB64Std(prevByte(buf, s)))
		}
		i = j
	}
}

// checkGitHubToken: GitHub's 2021 formats are a prefix and 36 base62
// characters whose last 6 are the CRC-32 (IEEE) of the first 30, in base62
// (0-9A-Za-z) padded with zeros (github.blog, "Behind GitHub's new
// authentication token formats"). The checksum makes a false positive about
// one in 4 billion for strings that already have the exact shape.
func checkGitHubToken(buf []byte, start, end int, emit emitFunc) {
	if wordBefore(buf, start) {
		return
	}
	body := fixed(buf, end, 36, isAlnum)
	if body == nil || !gitHubChecksumOK(body) {
		return
	}
	emit(KindGitHubToken, SeverityHigh, buf[start:end+36])
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func gitHubChecksumOK(body []byte) bool {
	c := crc32.ChecksumIEEE(body[:30])
	var sum [6]byte
	for i := 5; i >= 0; i-- {
		sum[i] = base62[c%62]
		c /= 62
	}
	return bytes.Equal(sum[:], body[30:])
}

// checkGitHubPAT: fine-grained tokens are github_pat_, 22 base62, '_', 59
// base62. Their checksum is not documented, so shape alone decides; the
// prefix is specific enough.
func checkGitHubPAT(buf []byte, start, end int, emit emitFunc) {
	if wordBefore(buf, start) || end+23 > len(buf) || !all(buf[end:end+22], isAlnum) || buf[end+22] != '_' {
		return
	}
	if fixed(buf, end+23, 59, isAlnum) == nil {
		return
	}
	emit(KindGitHubToken, SeverityHigh, buf[start:end+23+59])
}

// openAIMarker is base64 of "OpenAI"; OpenAI embeds it in every key format
// (legacy sk-, sk-proj-, sk-svcacct-, sk-admin-).
var openAIMarker = []byte("T3BlbkFJ")

// checkOpenAIKey: sk-, an optional key type, and a base64url body that
// carries the marker, or failing that is long and random enough (a legacy
// 48-character key, or a typed key of 80 or more). "sk-" in prose ("risk-
// free", "sk-learn") has no such body.
func checkOpenAIKey(buf []byte, start, end int, emit emitFunc) {
	if wordBefore(buf, start) {
		return
	}
	tokEnd := runEnd(buf, end, isB64URL)
	body := buf[end:tokEnd]
	if bytes.HasPrefix(body, []byte("ant-")) || (tokEnd < len(buf) && buf[tokEnd] == '.') {
		return // Anthropic's, or a file or host name
	}
	typed := false
	for _, t := range []string{"proj-", "svcacct-", "admin-"} {
		if rest, ok := bytes.CutPrefix(body, []byte(t)); ok {
			body, typed = rest, true
			break
		}
	}
	ok := len(body) >= 40 && bytes.Contains(body, openAIMarker) ||
		typed && len(body) >= 80 && mixed(body) ||
		!typed && len(body) == 48 && all(body, isAlnum) && mixed(body)
	if ok {
		emit(KindOpenAIKey, SeverityHigh, buf[start:tokEnd])
	}
}

// checkAnthropicKey: sk-ant-, a versioned type (api03-, admin01-, oat01-,
// ort01-: lower-case letters and two digits), and a long base64url body
// (93 characters and "AA" in today's keys; 80 is the floor accepted).
func checkAnthropicKey(buf []byte, start, end int, emit emitFunc) {
	if wordBefore(buf, start) {
		return
	}
	tokEnd := runEnd(buf, end, isB64URL)
	typ, body, ok := bytes.Cut(buf[end:tokEnd], []byte("-"))
	if !ok || len(typ) < 4 || len(typ) > 9 {
		return
	}
	letters := runEnd(typ, 0, isLower)
	if letters < 2 || len(typ)-letters != 2 || !all(typ[letters:], isDigit) {
		return
	}
	if len(body) >= 80 && mixed(body) {
		emit(KindAnthropicKey, SeverityHigh, buf[start:tokEnd])
	}
}

// checkSlackToken: xox?-, then dash-separated segments, the first numeric
// (a team or app id) and the last a random part of 20 or more characters
// (24 base62 for bot tokens, 32 hex for user tokens).
func checkSlackToken(buf []byte, start, end int, emit emitFunc) {
	if wordBefore(buf, start) {
		return
	}
	tokEnd := runEnd(buf, end, func(c byte) bool { return isAlnum(c) || c == '-' })
	segs := bytes.Split(buf[end:tokEnd], []byte("-"))
	if len(segs) < 3 || len(segs[0]) == 0 || !all(segs[0], isDigit) {
		return
	}
	last := segs[len(segs)-1]
	if len(last) < 20 || isAllDigits(last) {
		return
	}
	emit(KindSlackToken, SeverityHigh, buf[start:tokEnd])
}

func isAllDigits(b []byte) bool { return all(b, isDigit) }

// checkSlackWebhook: hooks.slack.com/services/T…/B…/secret. The URL is the
// credential: whoever has it can post to the channel.
func checkSlackWebhook(buf []byte, start, end int, emit emitFunc) {
	tokEnd := runEnd(buf, end, func(c byte) bool { return isAlnum(c) || c == '/' })
	segs := bytes.Split(buf[end:tokEnd], []byte("/"))
	if len(segs) < 3 {
		return
	}
	team, bot, secret := segs[0], segs[1], segs[2]
	idOK := func(id []byte, first byte) bool {
		return len(id) >= 9 && id[0] == first && all(id, func(c byte) bool { return isUpper(c) || isDigit(c) })
	}
	if idOK(team, 'T') && idOK(bot, 'B') && len(secret) >= 20 && all(secret, isAlnum) {
		emit(KindSlackWebhook, SeverityHigh, buf[start:end+len(team)+len(bot)+len(secret)+2])
	}
}

// checkPrivateKey: a PEM "-----BEGIN <label>PRIVATE KEY-----" line followed
// by at least 64 base64 characters of body (skipping line breaks and tabs,
// also as the "\n" of an unparsed JSON string). A tutorial quoting the
// header line, or "-----BEGIN PRIVATE KEY-----\n...", has no such body.
func checkPrivateKey(buf []byte, start, end int, emit emitFunc) {
	labelEnd := min(end+40, len(buf))
	i := bytes.Index(buf[end:labelEnd], []byte("PRIVATE KEY-----"))
	if i < 0 || !all(buf[end:end+i], func(c byte) bool { return isUpper(c) || isDigit(c) || c == ' ' }) {
		return
	}
	hdrEnd := end + i + len("PRIVATE KEY-----")
	n := 0
	for j := hdrEnd; j < len(buf) && n < 64; j++ {
		switch c := buf[j]; {
		case isB64Std(c) || c == '=':
			n++
		case c == '\r' || c == '\n' || c == ' ' || c == '\t':
		case c == '\\':
			// A line break or tab escaped once or more ("\n", "\\n").
			k := runEnd(buf, j, func(c byte) bool { return c == '\\' })
			if k == len(buf) || (buf[k] != 'n' && buf[k] != 'r' && buf[k] != 't') {
				return
			}
			j = k
		default:
			return
		}
	}
	if n >= 64 {
		emit(KindPrivateKey, SeverityHigh, buf[start:hdrEnd])
	}
}

// checkJWT: three base64url parts; the header decodes to a JSON object whose
// "alg" is set and not "none" (an unsigned token proves nothing and grants
// nothing), and the signature is at least 16 characters. Five parts is a
// JWE, whose contents are encrypted: not reported.
func checkJWT(buf []byte, start, end int, emit emitFunc) {
	if start > 0 {
		if c := prevByte(buf, start); isB64URL(c) || c == '.' {
			return
		}
	}
	h := runEnd(buf, start, isB64URL)
	if h-start > 1024 || h >= len(buf) || buf[h] != '.' {
		return
	}
	p := runEnd(buf, h+1, isB64URL)
	if p-h-1 < 4 || p >= len(buf) || buf[p] != '.' {
		return
	}
	s := runEnd(buf, p+1, isB64URL)
	if s-p-1 < 16 || (s < len(buf) && buf[s] == '.') {
		return
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(string(buf[start:h]), "="))
	if err != nil {
		return
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(raw, &hdr) != nil || hdr.Alg == "" || strings.EqualFold(hdr.Alg, "none") {
		return
	}
	emit(KindJWT, SeverityMedium, buf[start:s])
}
