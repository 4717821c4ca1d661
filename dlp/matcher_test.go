package dlp

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/coregx/ahocorasick"
)

// The matcher skips most positions; these tests hold it to a plain search.

// Rules without wordStart are found by the gram filter, which keeps stride 8
// only for patterns of 11 bytes or more.
func TestAnywherePrefixesAreLongEnoughForStride8(t *testing.T) {
	for _, r := range rules {
		for _, p := range r.prefixes {
			if !r.wordStart && len(p) < 8+gramLen-1 {
				t.Errorf("prefix %q is found anywhere but is shorter than %d bytes", p, 8+gramLen-1)
			}
		}
	}
}

type matcherCase struct {
	texts     [][]byte
	wordStart []bool
}

func randomMatcherCase(r *rand.Rand) matcherCase {
	var c matcherCase
	for _, p := range []string{"AKIA", "ghp_", "sk-", "sk-ant-", "eyJ", "xoxb-"} {
		c.texts, c.wordStart = append(c.texts, []byte(p)), append(c.wordStart, true)
	}
	for _, p := range []string{"-----BEGIN ", "aws_secret_access_key", "hooks.slack.com/services/"} {
		c.texts, c.wordStart = append(c.texts, []byte(p)), append(c.wordStart, false)
	}
	// Literals of 8 bytes or more (8 to 10 forces stride 4).
	minLen := 8 + r.IntN(6)
	for range 5 {
		c.texts = append(c.texts, randomBytes(r, minLen+r.IntN(40), "ABCabc012+/=%\\-_ "))
		c.wordStart = append(c.wordStart, false)
	}
	return c
}

func randomBytes(r *rand.Rand, n int, alphabet string) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return b
}

// randomBody mixes base64 runs, prose, JSON escapes and the patterns.
func randomBody(r *rand.Rand, c matcherCase) []byte {
	var b []byte
	for len(b) < 2000 {
		switch r.IntN(6) {
		case 0:
			b = append(b, c.texts[r.IntN(len(c.texts))]...)
		case 1:
			b = append(b, randomBytes(r, r.IntN(60), "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_")...)
		case 2:
			b = append(b, []string{`\n`, `\t`, `\"`, `\\`, `\u00e9`, `\u0041`, `\/`, ` `, `.`, `"`, "\n", "é"}[r.IntN(12)]...)
		default:
			b = append(b, randomBytes(r, r.IntN(12), "abcdefghij ,.:")...)
		}
	}
	return b
}

// TestMatcherFindsWhatAutomatonFinds holds the matcher to a well-kept
// Aho-Corasick library (coregx/ahocorasick, the scanner's matcher before
// it was measured too slow: one pass over 64 KiB cost 118 µs) as the
// oracle: every occurrence the automaton finds, the matcher reports, and
// nothing else.
func TestMatcherFindsWhatAutomatonFinds(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		c := randomMatcherCase(r)
		checkAgainstAutomaton(t, c, randomBody(r, c))
	}
}

// FuzzMatcher runs the same comparison on bodies the fuzzer makes.
func FuzzMatcher(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 4))
	c := randomMatcherCase(r)
	f.Add(randomBody(r, c))
	f.Add([]byte(`{"k":"AKIA` + "ABCDEFGHIJKLMNOP" + `\nghp_xxx"}`))
	f.Fuzz(func(t *testing.T, body []byte) { checkAgainstAutomaton(t, c, body) })
}

func checkAgainstAutomaton(t *testing.T, c matcherCase, body []byte) {
	t.Helper()
	b := ahocorasick.NewBuilder()
	for _, text := range c.texts {
		b.AddPattern(text)
	}
	oracle, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	m := newMatcher(c.texts, c.wordStart)
	type hit struct{ id, start int }
	got := map[hit]bool{}
	var runs []span
	m.find(body, func(id, start int) { got[hit{id, start}] = true }, func(s, e int) { runs = append(runs, span{s, e}) })

	for _, om := range oracle.FindAllOverlapping(body) {
		id, i := om.PatternID, om.Start
		// A word-start prefix must be found where a rule could
		// report a token: at a word start, with a long enough run of
		// [A-Za-z0-9_-] from there.
		need := !c.wordStart[id] ||
			runEnd(body, i, isB64URL)-i >= minTokenRun && (i == 0 || !isWord(prevByte(body, i)))
		if need && !got[hit{id, i}] {
			t.Fatalf("pattern %q at %d not found (stride %d) in %q", c.texts[id], i, m.stride, body)
		}
		delete(got, hit{id, i})
	}
	for h := range got {
		if !bytes.HasPrefix(body[h.start:], c.texts[h.id]) {
			t.Fatalf("pattern %q reported at %d where it is not", c.texts[h.id], h.start)
		}
	}

	var want []span
	for i := 0; i < len(body); {
		j := runEnd(body, i, func(c byte) bool { return base64Chars[c] })
		if j-i >= minBase64Run {
			want = append(want, span{i, j})
		}
		i = max(j, i+1)
	}
	if len(runs) != len(want) {
		t.Fatalf("base64 runs %v, want %v", runs, want)
	}
	for i := range runs {
		if runs[i] != want[i] {
			t.Fatalf("base64 runs %v, want %v", runs, want)
		}
	}
}

func TestMaybeBase64AdmitsEveryBase64Block(t *testing.T) {
	for c := range 256 {
		w := uint64(c) * ones
		if base64Chars[c] && !maybeBase64(w) {
			t.Errorf("%q is base64 but a block of it fails maybeBase64", rune(c))
		}
		if (c < '+' || c > 'z') && maybeBase64(w) {
			t.Errorf("%q is outside '+'..'z' but a block of it passes", rune(c))
		}
		if base64Chars[c] && (below0(w) != 0) != (c < '0') {
			t.Errorf("below0 is wrong for %q", rune(c))
		}
	}
}
