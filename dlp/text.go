package dlp

import (
	"encoding/binary"
	"regexp/syntax"
	"unicode"
	"unicode/utf8"
)

// Base64 often carries binary data (images, archives) where nothing can be
// found: every token, literal form and nested encoding is text. So a base64
// layer keeps of its decoding only the stretches of text long enough to
// hold the shortest of them, and the layers below it scan those instead of
// all the binary around them.

// textBytes are printable ASCII and the whitespace of text (tab, line
// feed, carriage return): the bytes of every token and encoding the rules
// look for.
var textBytes = func() (t [256]bool) {
	for c := range 256 {
		t[c] = 0x20 <= c && c < 0x7f || c == '\t' || c == '\n' || c == '\r'
	}
	return t
}()

// minText returns the shortest stretch of text a finding can be in, or 0
// when a finding may involve other bytes (a literal with a byte outside
// textBytes, a regular expression that can match one), in which case all
// of a decoding is kept.
func minText(forms [][]byte, regexes []namedRegex) int {
	n := minTokenRun
	for _, r := range rules {
		for _, p := range r.prefixes {
			if !r.wordStart {
				n = min(n, len(p))
			}
		}
	}
	for _, f := range forms {
		for _, c := range f {
			if !textBytes[c] {
				return 0
			}
		}
		n = min(n, len(f))
	}
	for _, r := range regexes {
		re, err := syntax.Parse(r.re.String(), syntax.Perl) // as regexp.Compile parses it
		if err != nil || !textOnly(re) {
			return 0
		}
		n = min(n, minLen(re))
	}
	if n < 7 {
		return 0 // keepText finds stretches of 7 or more
	}
	return n
}

// textOnly reports whether re matches only bytes in textBytes.
func textOnly(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL, syntax.OpNoMatch:
		return re.Op == syntax.OpNoMatch
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			if !textRune(r) {
				return false
			}
			// (?i)k also matches the Kelvin sign, (?i)s the long s.
			for f := unicode.SimpleFold(r); re.Flags&syntax.FoldCase != 0 && f != r; f = unicode.SimpleFold(f) {
				if !textRune(f) {
					return false
				}
			}
		}
	case syntax.OpCharClass:
		for i := 0; i < len(re.Rune); i += 2 {
			if re.Rune[i+1] >= utf8.RuneSelf {
				return false
			}
			for r := re.Rune[i]; r <= re.Rune[i+1]; r++ {
				if !textRune(r) {
					return false
				}
			}
		}
	}
	for _, sub := range re.Sub {
		if !textOnly(sub) {
			return false
		}
	}
	return true
}

func textRune(r rune) bool { return r < utf8.RuneSelf && textBytes[r] }

// minLen returns the fewest bytes a match of re has.
func minLen(re *syntax.Regexp) int {
	switch re.Op {
	case syntax.OpLiteral:
		n := 0
		for _, r := range re.Rune {
			n += utf8.RuneLen(r)
		}
		return n
	case syntax.OpCharClass, syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return 1
	case syntax.OpCapture, syntax.OpPlus:
		return minLen(re.Sub[0])
	case syntax.OpRepeat:
		return re.Min * minLen(re.Sub[0])
	case syntax.OpConcat:
		n := 0
		for _, sub := range re.Sub {
			n += minLen(sub)
		}
		return n
	case syntax.OpAlternate:
		n := -1
		for _, sub := range re.Sub {
			if m := minLen(sub); n < 0 || m < n {
				n = m
			}
		}
		return max(n, 0)
	}
	return 0 // empty-width assertions, *, ?, empty match
}

// keepText moves the stretches of at least n text bytes in dec to its start,
// each followed by a line feed, and returns them; n == 0 keeps all of dec.
// A stretch of 7 or more text bytes holds an aligned 4-byte block of them,
// so only such blocks are looked at: those whose bytes all pass maybeText,
// a superset of textBytes tested 8 bytes at a time.
func keepText(dec []byte, n int) []byte {
	if n == 0 {
		return dec
	}
	out := dec[:0]
	next := 0 // dec[:next] is done with
	for k := 0; k < len(dec); k += 8 {
		var in uint64 // high bit set for each byte in '\t'..'~'
		if k+8 <= len(dec) {
			in = maybeText(binary.LittleEndian.Uint64(dec[k:]))
		} else {
			var w [8]byte
			copy(w[:], dec[k:])
			in = maybeText(binary.LittleEndian.Uint64(w[:])) &^ (highs << (8 * (len(dec) - k)))
		}
		for half := 0; half < 8; half += 4 {
			if k+half < next || in>>(8*half)&0x80808080 != 0x80808080 {
				continue
			}
			start, end := k+half, k+half
			for start > next && textBytes[dec[start-1]] {
				start--
			}
			for end < len(dec) && textBytes[dec[end]] {
				end++
			}
			if end-start >= n {
				// A copy within dec: out never passes start.
				out = append(append(out, dec[start:end]...), '\n')
			}
			// dec[end] is not text, and may be overwritten by the line
			// feed: the next stretch starts after it.
			next = end + 1
		}
	}
	return out
}

// maybeText has the high bit set for each byte of w in '\t'..'~'.
func maybeText(w uint64) uint64 {
	x := w &^ highs
	ge := x + ones*(0x80-'\t')
	gt := x + ones*(0x7f-'~')
	return ge &^ gt &^ w & highs
}
