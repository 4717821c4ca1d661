package dlp_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"testing"

	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/dlp"
	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// streamChunks scans body cut at the given offsets.
func streamChunks(t *testing.T, s *dlp.Scanner, ce string, body []byte, cuts ...int) []dlp.Finding {
	t.Helper()
	st, err := s.NewEncodedStream(ce)
	require.NoError(t, err)
	prev := 0
	for _, c := range append(cuts, len(body)) {
		_, err := st.Write(body[prev:c])
		require.NoError(t, err)
		prev = c
	}
	got, err := st.Close()
	require.NoError(t, err)
	return got
}

func TestStreamFindsSecretsSplitAtEveryBoundary(t *testing.T) {
	f := newFixture(t)
	g := newGen(4)
	cases := []attempt{
		{name: "github token in json", body: []byte(`{"c":"` + g.GitHubToken("ghp_") + `"}`), kind: dlp.KindGitHubToken, encoding: "plain"},
		{name: "canary base64", body: []byte(b64(":" + f.canaries[0])), kind: dlp.KindCanary, encoding: "base64"},
		{name: "known secret query-escaped", body: []byte("t=" + url.QueryEscape(f.known[5])), kind: dlp.KindKnownSecret, encoding: "url"},
		{name: "jwt", body: []byte("Bearer " + g.JWT("ES256")), kind: dlp.KindJWT, encoding: "plain"},
	}
	for _, c := range cases {
		t.Run(c.name+" in 2 chunks", func(t *testing.T) {
			for i := range len(c.body) + 1 {
				if got := streamChunks(t, f.s, "", c.body, i); !found(got, c.kind, c.encoding) {
					t.Fatalf("cut at %d: want %s/%s, got %s", i, c.kind, c.encoding, describe(got))
				}
			}
		})
		t.Run(c.name+" in 3 chunks", func(t *testing.T) {
			for i := range len(c.body) + 1 {
				for j := i; j <= len(c.body); j++ {
					if got := streamChunks(t, f.s, "", c.body, i, j); !found(got, c.kind, c.encoding) {
						t.Fatalf("cuts at %d, %d: want %s/%s, got %s", i, j, c.kind, c.encoding, describe(got))
					}
				}
			}
		})
	}
}

func TestCompressedStreamSplitAtEveryBoundary(t *testing.T) {
	f := newFixture(t)
	g := newGen(5)
	plain := []byte(`{"input":"` + g.Anthropic() + `"}`)
	for _, c := range []struct {
		ce   string
		body []byte
	}{{"gzip", gzipped(t, plain)}, {"br", brotlied(t, plain)}} {
		t.Run(c.ce, func(t *testing.T) {
			for i := range len(c.body) + 1 {
				if got := streamChunks(t, f.s, c.ce, c.body, i); !found(got, dlp.KindAnthropicKey, c.ce) {
					t.Fatalf("cut at %d: got %s", i, describe(got))
				}
			}
		})
	}
}

// A caller answering ext_proc chunk by chunk must see a finding as soon as
// the Write carrying it returns, not only at Close.
func TestFindingsAreReadyWhenWriteReturns(t *testing.T) {
	f := newFixture(t)
	for _, ce := range []string{"", "gzip", "br", "deflate"} {
		t.Run("encoding "+ce, func(t *testing.T) {
			first := []byte(`{"a":"` + f.known[0] + `"}` + strings.Repeat(" ", 1000))
			body := first
			switch ce {
			case "gzip":
				body = gzipped(t, first)
			case "br":
				body = brotlied(t, first)
			case "deflate":
				body = zlibbed(t, first)
			}
			st, err := f.s.NewEncodedStream(ce)
			require.NoError(t, err)
			defer st.Close()
			_, err = st.Write(body)
			require.NoError(t, err)
			require.True(t, found(st.Findings(), dlp.KindKnownSecret, ""), "after Write: %s", describe(st.Findings()))
		})
	}
}

func TestDecompressionBombHitsTheLimit(t *testing.T) {
	s, err := dlp.New(dlp.Config{MaxDecompressed: 1 << 20})
	require.NoError(t, err)
	bomb := gzipped(t, make([]byte, 64<<20)) // 64 MiB of zeros, about 64 KiB compressed
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = s.ScanEncoded(bomb, "gzip")
	runtime.ReadMemStats(&after)
	require.ErrorIs(t, err, dlp.ErrTooLarge)
	// Decoding it all would allocate 64 MiB or more; stopping at the limit
	// allocates a small multiple of the 1 MiB limit at most.
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(8<<20))
}

func TestCompressedBodyErrors(t *testing.T) {
	f := newFixture(t)
	_, err := f.s.ScanEncoded([]byte("x"), "compress")
	require.ErrorIs(t, err, dlp.ErrUnsupportedEncoding)
	_, err = f.s.ScanEncoded([]byte("x"), "gzip, br")
	require.ErrorIs(t, err, dlp.ErrUnsupportedEncoding)

	gz := gzipped(t, []byte(strings.Repeat("hello ", 100)))
	_, err = f.s.ScanEncoded(gz[:len(gz)-10], "gzip")
	require.Error(t, err, "a truncated body cannot be vouched for")
	_, err = f.s.ScanEncoded([]byte("not gzip at all"), "gzip")
	require.Error(t, err)

	got, err := f.s.ScanEncoded(nil, "gzip")
	require.NoError(t, err, "an empty body is not an error")
	require.Empty(t, got)
}

// A known secret longer than the format window still splits safely: the
// window grows to the longest precomputed form.
func TestWindowCoversTheLongestForm(t *testing.T) {
	long := newGen(6).MixedChars(3000, b64std)
	s, err := dlp.New(dlp.Config{KnownSecrets: []dlp.Named{{Name: "LONG", Value: config.NewSecret(long)}}})
	require.NoError(t, err)
	require.GreaterOrEqual(t, s.Window(), 3*len(long), "every byte percent-encoded is three times as long")
	body := []byte("x=" + escapeAllPercent(long))
	got := streamChunks(t, s, "", body, len(body)/2)
	require.True(t, found(got, dlp.KindKnownSecret, "url"), describe(got))
}

func TestConfigErrorsNameSlotsNotValues(t *testing.T) {
	short := "abc123"
	_, err := dlp.New(dlp.Config{
		KnownSecrets: []dlp.Named{{Name: "SHORT", Value: config.NewSecret(short)}},
		Canaries:     []dlp.Named{{Value: config.NewSecret("long enough value")}},
		Patterns: []dlp.Pattern{
			{Name: "both", Literal: "literal-value", Regex: "x+"},
			{Name: "bad", Regex: "("},
			{Name: "empty", Regex: "x*"},
		},
	})
	require.ErrorIs(t, err, dlp.ErrConfig)
	for _, want := range []string{`"SHORT"`, "canary with no name", `"both"`, `"bad"`, `"empty"`} {
		require.Contains(t, err.Error(), want)
	}
	require.NotContains(t, err.Error(), short)
}

func TestSecretsAreNeverPrinted(t *testing.T) {
	f := newFixture(t)
	secret := f.known[0]
	body := []byte(strings.Join([]string{secret, b64(secret), url.QueryEscape(secret), f.canaries[0]}, "\n"))
	got := f.s.Scan(body)
	require.NotEmpty(t, got)
	var out bytes.Buffer
	for _, fd := range got {
		fmt.Fprintf(&out, "%v %+v %#v %s\n", fd, fd, fd, fd.String())
	}
	cfg := dlp.Config{KnownSecrets: []dlp.Named{{Name: "S", Value: config.NewSecret(secret)}}}
	fmt.Fprintf(&out, "%v %+v %#v\n", cfg, cfg, cfg)
	for _, v := range []string{secret, b64(secret)[:20], f.canaries[0]} {
		require.NotContains(t, out.String(), v)
	}
	require.Contains(t, out.String(), dlp.Fingerprint([]byte(secret)), "findings carry the fingerprint instead")
}

func TestFindingsAreDeduplicatedAndCapped(t *testing.T) {
	f := newFixture(t)
	got := f.s.Scan([]byte(f.known[0] + " " + f.known[0] + " " + b64(f.known[0])))
	require.Len(t, got, 1, describe(got))
	require.Equal(t, "plain", got[0].Encoding, "the first appearance's encoding is kept")

	g := newGen(7)
	var many []string
	for range 400 {
		many = append(many, g.GitHubToken("ghp_"))
	}
	got = f.s.Scan([]byte(strings.Join(many, " ")))
	require.Len(t, got, 256)
}

func TestErrTooLargeIsDistinct(t *testing.T) {
	require.False(t, errors.Is(dlp.ErrUnsupportedEncoding, dlp.ErrTooLarge))
}

// Concatenated gzip members are one valid body; a secret in a later member
// must not hide behind the first.
func TestGzipSecondMemberIsScanned(t *testing.T) {
	f := newFixture(t)
	body := append(gzipped(t, []byte("first member ")), gzipped(t, []byte(f.canaries[1]))...)
	for i := range len(body) + 1 {
		if got := streamChunks(t, f.s, "gzip", body, i); !found(got, dlp.KindCanary, "gzip") {
			t.Fatalf("cut at %d: got %s", i, describe(got))
		}
	}
	_, err := f.s.ScanEncoded(append(gzipped(t, []byte("x")), "trailing garbage"...), "gzip")
	require.Error(t, err, "bytes after the last member that are not a member")
}

// Codex compresses its request bodies with zstd.
func TestZstdBody(t *testing.T) {
	f := newFixture(t)
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf)
	require.NoError(t, err)
	_, _ = zw.Write([]byte(`{"input":"` + strings.Repeat("filler ", 5000) + f.canaries[0] + `"}`))
	require.NoError(t, zw.Close())
	got, err := f.s.ScanEncoded(buf.Bytes(), "zstd")
	require.NoError(t, err)
	var kinds []string
	for _, f := range got {
		kinds = append(kinds, f.Kind)
		assert.Equal(t, "zstd", f.Encoding)
	}
	assert.Contains(t, kinds, dlp.KindCanary)

	_, err = f.s.ScanEncoded(buf.Bytes()[:buf.Len()/2], "zstd")
	assert.Error(t, err, "a truncated body is not vouched for")
}
