package dlp_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/internal/tokengen"
)

// The tokens in these tests are generated (package tokengen), never written
// out, so that no token-shaped string sits in the repository for other
// scanners to flag, and a failing test can only ever print fingerprints.

const (
	upper          = tokengen.Upper
	lower          = tokengen.Lower
	digits         = tokengen.Digits
	base62         = tokengen.Base62
	b64std         = tokengen.B64Std
	b64urlAlphabet = tokengen.B64URLAlphabet
	base32up       = tokengen.Base32Up
)

type gen = tokengen.Gen

func newGen(seed uint64) *gen { return tokengen.New(seed) }

// privateKeyPEM is a fresh P-256 key in PKCS #8 PEM, and its public key.
func privateKeyPEM(t testing.TB) (private, public string) {
	private, public, err := tokengen.PrivateKeyPEM()
	require.NoError(t, err)
	return private, public
}

func gzipped(_ testing.TB, b []byte) []byte  { return tokengen.Compressed("gzip", b) }
func zlibbed(_ testing.TB, b []byte) []byte  { return tokengen.Compressed("deflate", b) }
func brotlied(_ testing.TB, b []byte) []byte { return tokengen.Compressed("br", b) }
