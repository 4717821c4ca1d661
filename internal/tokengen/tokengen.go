// Package tokengen makes credential-shaped test values in each well-known
// format the dlp package detects, deterministically from a seed. Tests
// generate their tokens instead of writing them out, so no token-shaped
// string sits in the repository for other scanners to flag, and a failing
// test can only ever print fingerprints. It is for tests only.
package tokengen

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	crand "crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"hash/crc32"
	"math/rand/v2"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

// Alphabets the formats are made of.
const (
	Upper          = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	Lower          = "abcdefghijklmnopqrstuvwxyz"
	Digits         = "0123456789"
	Base62         = Digits + Upper + Lower
	B64Std         = Upper + Lower + Digits + "+/"
	B64URLAlphabet = Upper + Lower + Digits + "-_"
	Base32Up       = Upper + "234567"
)

// Gen makes deterministic random tokens.
type Gen struct{ r *rand.Rand }

// New returns a generator; the same seed gives the same tokens.
func New(seed uint64) *Gen { return &Gen{rand.New(rand.NewPCG(seed, 13))} }

// Chars returns n characters of alphabet.
func (g *Gen) Chars(n int, alphabet string) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[g.r.IntN(len(alphabet))]
	}
	return string(b)
}

// MixedChars returns n characters of alphabet with an upper-case letter, a
// lower-case letter and a digit, as real keys of that length have.
func (g *Gen) MixedChars(n int, alphabet string) string {
	for {
		s := g.Chars(n, alphabet)
		if bytes.ContainsAny([]byte(s), Upper) && bytes.ContainsAny([]byte(s), Lower) && bytes.ContainsAny([]byte(s), Digits) {
			return s
		}
	}
}

// Bytes returns n random bytes.
func (g *Gen) Bytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.r.UintN(256))
	}
	return b
}

// GitHubToken follows GitHub's format: the prefix (ghp_, gho_, …), 30
// random base62 characters and their CRC-32 in 6 base62 digits.
func (g *Gen) GitHubToken(prefix string) string {
	body := g.Chars(30, Base62)
	return prefix + body + Base62Checksum(body)
}

// Base62Checksum is GitHub's checksum of a token body.
func Base62Checksum(body string) string {
	c := crc32.ChecksumIEEE([]byte(body))
	var sum [6]byte
	for i := 5; i >= 0; i-- {
		sum[i] = Base62[c%62]
		c /= 62
	}
	return string(sum[:])
}

// GitHubPAT is a fine-grained personal access token.
func (g *Gen) GitHubPAT() string {
	return "github_pat_" + g.Chars(22, Base62) + "_" + g.Chars(59, Base62)
}

// AWSKeyID is an access key id with the prefix AKIA or ASIA.
func (g *Gen) AWSKeyID(prefix string) string { return prefix + g.Chars(16, Base32Up) }

// AWSSecret is a secret access key.
func (g *Gen) AWSSecret() string { return g.MixedChars(40, B64Std) }

// OpenAILegacy is an sk- key with OpenAI's marker.
func (g *Gen) OpenAILegacy() string {
	return "sk-" + g.Chars(20, Base62) + "T3BlbkFJ" + g.Chars(20, Base62)
}

// OpenAIProject is an sk-proj- key.
func (g *Gen) OpenAIProject() string {
	return "sk-proj-" + g.Chars(74, B64URLAlphabet) + "T3BlbkFJ" + g.Chars(74, B64URLAlphabet)
}

// Anthropic is an sk-ant-api03- key.
func (g *Gen) Anthropic() string { return "sk-ant-api03-" + g.MixedChars(93, B64URLAlphabet) + "AA" }

// SlackBot is an xoxb- token.
func (g *Gen) SlackBot() string {
	return "xoxb-" + g.Chars(11, Digits) + "-" + g.Chars(12, Digits) + "-" + g.MixedChars(24, Base62)
}

// SlackUser is an xoxp- token.
func (g *Gen) SlackUser() string {
	return "xoxp-" + g.Chars(11, Digits) + "-" + g.Chars(11, Digits) + "-" + g.Chars(13, Digits) + "-" + g.Chars(32, "0123456789abcdef")
}

// SlackWebhook is an incoming webhook URL.
func (g *Gen) SlackWebhook() string {
	return "https://hooks.slack.com/services/T" + g.Chars(8, Upper+Digits) + "/B" + g.Chars(10, Upper+Digits) + "/" + g.MixedChars(24, Base62)
}

// JWT is a token signed with HMAC under alg, or unsigned for "none".
func (g *Gen) JWT(alg string) string {
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"alg":"` + alg + `","typ":"JWT"}`))
	body := enc.EncodeToString([]byte(`{"sub":"agent-` + g.Chars(8, Lower) + `","exp":1900000000}`))
	if alg == "none" {
		return head + "." + body + "."
	}
	mac := hmac.New(sha256.New, g.Bytes(32))
	mac.Write([]byte(head + "." + body))
	return head + "." + body + "." + enc.EncodeToString(mac.Sum(nil))
}

// PrivateKeyPEM is a fresh P-256 key in PKCS #8 PEM, and its public key.
func PrivateKeyPEM() (private, public string, err error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		return "", "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return "", "", err
	}
	pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return "", "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})), nil
}

// Compressed returns b with the HTTP content coding ("gzip", "deflate",
// "br" or "zstd"); it panics on any other, a test's mistake.
func Compressed(coding string, b []byte) []byte {
	var buf bytes.Buffer
	var w interface {
		Write([]byte) (int, error)
		Close() error
	}
	switch coding {
	case "gzip":
		w = gzip.NewWriter(&buf)
	case "deflate":
		w = zlib.NewWriter(&buf)
	case "br":
		w = brotli.NewWriter(&buf)
	case "zstd":
		zw, err := zstd.NewWriter(&buf)
		if err != nil {
			panic(err)
		}
		w = zw
	default:
		panic("tokengen: unknown content coding " + coding)
	}
	if _, err := w.Write(b); err != nil {
		panic(err)
	}
	if err := w.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// CodexTurnBody is a JSON request body of about n bytes shaped like a Codex
// turn (instructions, escaped newlines and quotes, code), with extra as the
// last message's text.
func CodexTurnBody(n int, extra string) []byte {
	var b bytes.Buffer
	b.WriteString(`{"model":"gpt-5-codex","instructions":"You are a coding agent.\nFollow the user's \"rules\".","input":[`)
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, `{"type":"message","role":"user","content":[{"type":"input_text","text":"line %d: func f%d() { return \"x\" }\n"}]},`, i, i)
	}
	fmt.Fprintf(&b, `{"type":"message","role":"user","content":[{"type":"input_text","text":%q}]}]}`, extra)
	return b.Bytes()
}

// IntN returns a random int in [0, n).
func (g *Gen) IntN(n int) int { return g.r.IntN(n) }
