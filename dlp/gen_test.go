package dlp_test

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
	"hash/crc32"
	"math/rand/v2"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/stretchr/testify/require"
)

// The tokens in these tests are generated, never written out, so that no
// token-shaped string sits in the repository for other scanners to flag, and
// a failing test can only ever print fingerprints.

const (
	upper          = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	lower          = "abcdefghijklmnopqrstuvwxyz"
	digits         = "0123456789"
	base62         = digits + upper + lower
	b64std         = upper + lower + digits + "+/"
	b64urlAlphabet = upper + lower + digits + "-_"
	base32up       = upper + "234567"
)

// gen makes deterministic random tokens in each well-known format.
type gen struct{ r *rand.Rand }

func newGen(seed uint64) *gen { return &gen{rand.New(rand.NewPCG(seed, 13))} }

func (g *gen) chars(n int, alphabet string) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[g.r.IntN(len(alphabet))]
	}
	return string(b)
}

// mixedChars returns n characters of alphabet with an upper-case letter, a
// lower-case letter and a digit, as real keys of that length have.
func (g *gen) mixedChars(n int, alphabet string) string {
	for {
		s := g.chars(n, alphabet)
		if bytes.ContainsAny([]byte(s), upper) && bytes.ContainsAny([]byte(s), lower) && bytes.ContainsAny([]byte(s), digits) {
			return s
		}
	}
}

func (g *gen) bytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.r.UintN(256))
	}
	return b
}

// gitHubToken follows GitHub's format: 30 random base62 characters and the
// CRC-32 of them in 6 base62 digits.
func (g *gen) gitHubToken(prefix string) string {
	body := g.chars(30, base62)
	return prefix + body + base62Checksum(body)
}

func base62Checksum(body string) string {
	c := crc32.ChecksumIEEE([]byte(body))
	var sum [6]byte
	for i := 5; i >= 0; i-- {
		sum[i] = base62[c%62]
		c /= 62
	}
	return string(sum[:])
}

func (g *gen) gitHubPAT() string {
	return "github_pat_" + g.chars(22, base62) + "_" + g.chars(59, base62)
}

func (g *gen) awsKeyID(prefix string) string { return prefix + g.chars(16, base32up) }
func (g *gen) awsSecret() string             { return g.mixedChars(40, b64std) }

func (g *gen) openAILegacy() string {
	return "sk-" + g.chars(20, base62) + "T3BlbkFJ" + g.chars(20, base62)
}

func (g *gen) openAIProject() string {
	return "sk-proj-" + g.chars(74, b64urlAlphabet) + "T3BlbkFJ" + g.chars(74, b64urlAlphabet)
}

func (g *gen) anthropic() string { return "sk-ant-api03-" + g.mixedChars(93, b64urlAlphabet) + "AA" }

func (g *gen) slackBot() string {
	return "xoxb-" + g.chars(11, digits) + "-" + g.chars(12, digits) + "-" + g.mixedChars(24, base62)
}

func (g *gen) slackUser() string {
	return "xoxp-" + g.chars(11, digits) + "-" + g.chars(11, digits) + "-" + g.chars(13, digits) + "-" + g.chars(32, "0123456789abcdef")
}

func (g *gen) slackWebhook() string {
	return "https://hooks.slack.com/services/T" + g.chars(8, upper+digits) + "/B" + g.chars(10, upper+digits) + "/" + g.mixedChars(24, base62)
}

func (g *gen) jwt(alg string) string {
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"alg":"` + alg + `","typ":"JWT"}`))
	body := enc.EncodeToString([]byte(`{"sub":"agent-` + g.chars(8, lower) + `","exp":1900000000}`))
	if alg == "none" {
		return head + "." + body + "."
	}
	mac := hmac.New(sha256.New, g.bytes(32))
	mac.Write([]byte(head + "." + body))
	return head + "." + body + "." + enc.EncodeToString(mac.Sum(nil))
}

// privateKeyPEM is a fresh P-256 key in PKCS #8 PEM.
func privateKeyPEM(t testing.TB) (private, public string) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(k)
	require.NoError(t, err)
	pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
}

func gzipped(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, err := w.Write(b)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}

func zlibbed(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	_, err := w.Write(b)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}

func brotlied(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	w := brotli.NewWriter(&buf)
	_, err := w.Write(b)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}
