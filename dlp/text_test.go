package dlp

import (
	"bytes"
	"math/rand/v2"
	"regexp"
	"testing"
)

func TestMinTextFollowsTheRegularExpressions(t *testing.T) {
	forms := [][]byte{[]byte("a-known-secret-value")}
	for _, c := range []struct {
		regex string
		want  int
	}{
		{"", 11}, // the shortest prefix found anywhere, "-----BEGIN "
		{`EGT-[0-9a-f]{32}`, 11},
		{`tok_[a-z]{3}`, 7},
		{`ab`, 0},             // too short to look for
		{`secret=.{8}`, 0},    // '.' matches bytes that are not text
		{`secret=[^"]{8}`, 0}, // so does a negated class
		{`(?i)password: \S{8,}`, 0},
		{`(?i)token[:=] ?[A-Z0-9]{20}`, 0}, // (?i)k matches the Kelvin sign
		{`(?i)pass[:=][A-Z0-9]{20}`, 0},    // and (?i)s the long s
		{`(?i)ab[cd][:=][0-9]{20}`, 11},
		{`(?i)[a-z]{3}-[0-9]{4}`, 0}, // [a-z] folds to the Kelvin sign too
		{`x(yy|zzz)*[a-z]{6,}q?`, 7},
		{`x(yy|zzz)*[a-z]{2,}q?`, 0}, // 3 bytes, too short
	} {
		var regexes []namedRegex
		if c.regex != "" {
			regexes = []namedRegex{{re: regexp.MustCompile(c.regex)}}
		}
		if got := minText(forms, regexes); got != c.want {
			t.Errorf("minText with %q = %d, want %d", c.regex, got, c.want)
		}
	}
	if got := minText([][]byte{[]byte("secret\x00value")}, nil); got != 0 {
		t.Errorf("a literal with a byte that is not text: minText = %d, want 0", got)
	}
	if got := minText([][]byte{[]byte("8bytes!!")}, nil); got != 8 {
		t.Errorf("an 8-byte literal: minText = %d, want 8", got)
	}
}

func TestKeepTextKeepsEveryLongEnoughStretch(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		dec := make([]byte, r.IntN(300))
		for i := range dec {
			if r.IntN(3) == 0 {
				dec[i] = byte(r.UintN(256))
			} else {
				const text = "abc XYZ\n\t={}\\%"
				dec[i] = text[r.IntN(len(text))]
			}
		}
		n := 7 + r.IntN(10)
		var want []byte
		for i := 0; i < len(dec); {
			j := i
			for j < len(dec) && textBytes[dec[j]] {
				j++
			}
			if j-i >= n {
				want = append(append(want, dec[i:j]...), '\n')
			}
			i = j + 1
		}
		if got := keepText(bytes.Clone(dec), n); !bytes.Equal(got, want) {
			t.Fatalf("keepText(%q, %d) = %q, want %q", dec, n, got, want)
		}
	}
}
