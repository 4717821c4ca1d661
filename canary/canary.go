// Package canary makes the fake credentials agent-env plants in a bottle's
// agent environment, and keeps them where the egress finds them (issue 13).
//
// A canary is shaped exactly like a real credential of its kind, so that a
// tool or a prompt-injected agent that goes looking for credentials takes it
// for one, and so that package dlp's format rules recognise it too. It opens
// nothing: no service ever issued it. The egress never needs to send one
// anywhere, so any appearance of one in what the agent sends out means it is
// carrying off what it found in its environment.
//
// Each agent-env run makes a new set (Generate), unique to the run and so to
// the bottle, and records it in STATE_DIR/<bottle>/canaries.json (Record)
// beside the sets of the runs before it (the last Keep), so that agents
// started by an earlier run are still caught. serve and control read the
// file (Load) and hand the canaries to the bottle's ext_proc server.
//
// Values are config.Secret: no way Go prints, logs or marshals a Set shows
// them. Only the file itself holds them in clear.
package canary

import (
	"crypto/rand"
	"encoding/hex"
	"hash/crc32"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/dlp"
)

// The kinds of canary, named as package dlp names the formats they mimic.
const (
	// AWSAccessKeyID is AKIA and 16 characters of A-Z2-7, as AWS's
	// long-term key ids are.
	AWSAccessKeyID = dlp.KindAWSAccessKeyID
	// AWSSecretAccessKey is the key id's 40-character secret: upper and
	// lower case, digits, '+' and '/'.
	AWSSecretAccessKey = dlp.KindAWSSecretKey
	// GitHubToken is a classic personal access token: ghp_, 30 random
	// base62 characters and their CRC-32 in 6 more, so that checksum-aware
	// scanners (dlp's, GitHub's own) take it for a real one.
	GitHubToken = dlp.KindGitHubToken
)

// Set is the canaries of one agent-env run.
type Set struct {
	// Run identifies the run: 16 lower-case hex digits, random.
	Run string
	// Created is when the run made the set.
	Created time.Time
	// Values are the canaries by kind.
	Values map[string]config.Secret
}

// Generate makes a set of every kind, with values and a run id drawn from
// crypto/rand, which does not fail (Go 1.24 and later).
func Generate(now time.Time) Set {
	return Set{
		Run:     newRunID(),
		Created: now.UTC(),
		Values: map[string]config.Secret{
			AWSAccessKeyID:     config.NewSecret(awsAccessKeyID()),
			AWSSecretAccessKey: config.NewSecret(awsSecretAccessKey()),
			GitHubToken:        config.NewSecret(gitHubToken()),
		},
	}
}

// Only returns the set with just the kinds named: what agent-env planted,
// which is all that is worth watching for.
func (s Set) Only(kinds ...string) Set {
	out := s
	out.Values = map[string]config.Secret{}
	for _, k := range kinds {
		if v, ok := s.Values[k]; ok {
			out.Values[k] = v
		}
	}
	return out
}

// Kinds are the set's kinds, sorted.
func (s Set) Kinds() []string { return slices.Sorted(maps.Keys(s.Values)) }

// Value returns the canary of kind k, or an empty secret.
func (s Set) Value(k string) config.Secret { return s.Values[k] }

func newRunID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails; see Generate
	return hex.EncodeToString(b[:])
}

const (
	base32Upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	base62      = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	base64Std   = base62 + "+/"
)

// awsAccessKeyID never ends in EXAMPLE: AWS's documentation key does, and
// scanners (dlp's too) skip it as the example it is.
func awsAccessKeyID() string {
	for {
		id := "AKIA" + randomString(base32Upper, 16)
		if !strings.HasSuffix(id, "EXAMPLE") {
			return id
		}
	}
}

// awsSecretAccessKey has an upper-case letter, a lower-case letter and a
// digit, as nearly every real one does and as dlp's rule requires to tell
// one from a hex hash or a word.
func awsSecretAccessKey() string {
	for {
		k := randomString(base64Std, 40)
		if mixed(k) && !strings.Contains(k, "EXAMPLE") {
			return k
		}
	}
}

// gitHubToken mirrors GitHub's format ("Behind GitHub's new authentication
// token formats", github.blog, 2021): the prefix, 30 random base62
// characters, and the CRC-32 (IEEE) of those 30, in base62 with the most
// significant digit first, padded with zeros to 6 characters.
func gitHubToken() string {
	body := randomString(base62, 30)
	return "ghp_" + body + gitHubChecksum(body)
}

func gitHubChecksum(body string) string {
	c := crc32.ChecksumIEEE([]byte(body))
	var sum [6]byte
	for i := len(sum) - 1; i >= 0; i-- {
		sum[i] = base62[c%62]
		c /= 62
	}
	return string(sum[:])
}

// randomString draws n characters uniformly from alphabet (at most 256
// characters). Bytes at or above the largest multiple of len(alphabet)
// are drawn again, so no character is likelier than another.
func randomString(alphabet string, n int) string {
	limit := 256 - 256%len(alphabet)
	out := make([]byte, 0, n)
	var buf [64]byte
	for len(out) < n {
		_, _ = rand.Read(buf[:]) // never fails; see Generate
		for _, b := range buf {
			if int(b) < limit && len(out) < n {
				out = append(out, alphabet[int(b)%len(alphabet)])
			}
		}
	}
	return string(out)
}

func mixed(s string) bool {
	var upper, lower, digit bool
	for _, c := range s {
		upper = upper || 'A' <= c && c <= 'Z'
		lower = lower || 'a' <= c && c <= 'z'
		digit = digit || '0' <= c && c <= '9'
	}
	return upper && lower && digit
}
