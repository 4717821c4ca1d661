package canary

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/dlp"
)

// The tests never print a canary value: failures name the kind only.

var testNow = time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)

func TestGenerateShapes(t *testing.T) {
	shapes := map[string]*regexp.Regexp{
		AWSAccessKeyID:     regexp.MustCompile(`^AKIA[A-Z2-7]{16}$`),
		AWSSecretAccessKey: regexp.MustCompile(`^[A-Za-z0-9+/]{40}$`),
		GitHubToken:        regexp.MustCompile(`^ghp_[0-9A-Za-z]{36}$`),
	}
	for range 50 {
		s := Generate(testNow)
		require.Regexp(t, `^[0-9a-f]{16}$`, s.Run)
		require.Equal(t, testNow, s.Created)
		require.Equal(t, []string{AWSAccessKeyID, AWSSecretAccessKey, GitHubToken}, s.Kinds())
		for kind, re := range shapes {
			v := s.Value(kind).Reveal()
			require.True(t, re.MatchString(v), "%s does not have its shape", kind)
			require.GreaterOrEqual(t, len(v), dlp.MinLiteralLen, kind)
		}
		require.False(t, strings.HasSuffix(s.Value(AWSAccessKeyID).Reveal(), "EXAMPLE"), "never AWS's documentation key")
		require.True(t, mixed(s.Value(AWSSecretAccessKey).Reveal()), "the secret key is mixed-case with digits")
	}
}

func TestGenerateUnique(t *testing.T) {
	seen := map[string]string{}
	for range 100 {
		s := Generate(testNow)
		_, dup := seen[s.Run]
		require.False(t, dup, "run ids are unique")
		seen[s.Run] = "run"
		for _, k := range s.Kinds() {
			v := s.Value(k).Reveal()
			_, dup := seen[v]
			require.False(t, dup, "a %s value repeats across runs", k)
			seen[v] = k
		}
	}
}

// TestDLPRecognisesCanaries: with no canaries configured at all, dlp's
// format rules take each canary for the credential it mimics; the GitHub
// token passes the checksum they verify.
func TestDLPRecognisesCanaries(t *testing.T) {
	scanner, err := dlp.New(dlp.Config{})
	require.NoError(t, err)
	s := Generate(testNow)
	for _, tt := range []struct {
		name string
		body string
		want []string
	}{
		{"github token", `{"token":"` + s.Value(GitHubToken).Reveal() + `"}`, []string{dlp.KindGitHubToken}},
		{"aws key id", "id=" + s.Value(AWSAccessKeyID).Reveal(), []string{dlp.KindAWSAccessKeyID}},
		{"aws credentials file", "[default]\naws_access_key_id = " + s.Value(AWSAccessKeyID).Reveal() +
			"\naws_secret_access_key = " + s.Value(AWSSecretAccessKey).Reveal() + "\n",
			[]string{dlp.KindAWSAccessKeyID, dlp.KindAWSSecretKey}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var kinds []string
			for _, f := range scanner.Scan([]byte(tt.body)) {
				kinds = append(kinds, f.Kind)
			}
			require.ElementsMatch(t, tt.want, kinds)
		})
	}
}

// TestGitHubChecksumKnownToken checks the encoding against a token whose
// checksum was computed apart from this code: Python's zlib.crc32 of 30
// '0' bytes is 0x77e5db82, which is "2C8GjS" in base62 (0-9A-Za-z).
func TestGitHubChecksumKnownToken(t *testing.T) {
	require.Equal(t, "2C8GjS", gitHubChecksum("000000000000000000000000000000"))
}
