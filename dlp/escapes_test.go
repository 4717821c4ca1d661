package dlp_test

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/egressgate/egressgate/dlp"
)

// escapeAttempts are tokens that JSON escapes hide or cut from their
// surroundings: a token right after an escaped newline (whose 'n' glues to
// the token until the escape is decoded), a token with escaped characters
// in it, a base64 run that only lines up once the escapes before it are
// decoded. The scanner must see them as it sees them unescaped.
func escapeAttempts(t testing.TB, f *fixture) []attempt {
	g := newGen(12)
	keyID, secret := g.AWSKeyID("AKIA"), g.AWSSecret()
	gh := g.GitHubToken("ghp_")
	priv, _ := privateKeyPEM(t)
	chat := func(content string) []byte {
		return []byte(`{"input":[{"role":"tool","content":` + jsonString(content) + `}]}`)
	}
	// A secret access key with a '/' in it, for the escaped-slash case.
	slashed := secret[:17] + "/" + secret[18:]
	// Base64 with a '/' before a GitHub token ("x??" encodes to "eD8/"), so
	// a decoder that stops at "\/" decodes the token's part misaligned.
	b64slashed := strings.ReplaceAll(b64("x??"+gh+"\n"), "/", `\/`)
	// A PEM body with a '/' in its first line, which the check reads.
	slashedPEM := "-----BEGIN RSA PRIVATE KEY-----\n" + g.Chars(10, b64std) + "/" + g.Chars(53, b64std) + "\n" +
		g.Chars(64, b64std) + "\n-----END RSA PRIVATE KEY-----\n"
	u := func(c byte) string { return fmt.Sprintf(`\u%04x`, c) }
	return []attempt{
		{name: "github token after an escaped newline", body: chat("tokens:\n" + gh + "\n"), kind: dlp.KindGitHubToken},
		{name: "aws key id after an escaped tab", body: chat("id\t" + keyID), kind: dlp.KindAWSAccessKeyID},
		{name: "jwt at the start of an escaped line", body: chat("Authorization header:\n" + g.JWT("RS256")), kind: dlp.KindJWT},
		{name: "anthropic key after an escaped non-ascii letter", body: []byte(`{"c":"caf\u00e9` + g.Anthropic() + `"}`), kind: dlp.KindAnthropicKey},
		{name: "aws secret on the line after its key id", body: chat(keyID + "\n" + secret + "\n"), kind: dlp.KindAWSSecretKey},
		{name: "github token after a double-escaped newline", body: []byte(`{"c":"fmt.Printf(\"\\n` + gh + `\")"}`), kind: dlp.KindGitHubToken},
		{name: "aws key id with its first letter escaped", body: []byte(`{"k":"` + u('A') + keyID[1:] + `"}`), kind: dlp.KindAWSAccessKeyID, encoding: "json"},
		{name: "slack webhook with escaped slashes", body: []byte(`{"u":"` + strings.ReplaceAll(g.SlackWebhook(), "/", `\/`) + `"}`), kind: dlp.KindSlackWebhook, encoding: "json"},
		{name: "aws secret with an escaped slash next to its key id", body: []byte(`{"id":"` + keyID + `","secret":"` + strings.ReplaceAll(slashed, "/", `\/`) + `"}`), kind: dlp.KindAWSSecretKey, encoding: "json"},
		{name: "private key with escaped tabs", body: chat(strings.ReplaceAll(priv, "\n", "\n\t")), kind: dlp.KindPrivateKey},
		{name: "private key with an escaped slash in its body", body: []byte(`{"k":"` + strings.ReplaceAll(strings.ReplaceAll(slashedPEM, "\n", `\n`), "/", `\/`) + `"}`), kind: dlp.KindPrivateKey, encoding: "json"},
		{name: "known secret with one character escaped", body: []byte(`{"v":"` + u(f.known[6][0]) + f.known[6][1:] + `"}`), kind: dlp.KindKnownSecret, encoding: "json"},
		{name: "base64 line after an escaped newline", body: chat("data:\n" + b64("token: "+gh+"\n")), kind: dlp.KindGitHubToken},
		{name: "base64 with escaped slashes", body: []byte(`{"d":"` + b64slashed + `"}`), kind: dlp.KindGitHubToken, encoding: "json+base64"},
		{name: "percent-encoded key id after an escaped newline", body: chat("q=\n" + escapeAllPercent(keyID)), kind: dlp.KindAWSAccessKeyID},
		{name: "github token url-safe base64 after an escaped quote", body: []byte(`{"c":"x=\"` + base64.RawURLEncoding.EncodeToString([]byte("t="+gh)) + `\""}`), kind: dlp.KindGitHubToken},
	}
}

func TestEscapedTokensAreDetected(t *testing.T) {
	f := newFixture(t)
	for _, c := range escapeAttempts(t, f) {
		t.Run(c.name, func(t *testing.T) { requireDetected(t, f.s, c) })
	}
}
