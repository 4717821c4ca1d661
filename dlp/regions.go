package dlp

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"slices"
	"unicode/utf8"
)

// The JSON and percent layers decode regions of a buffer, not all of it:
// around each escape or encoded run that can change what a rule or literal
// sees, out to the ends of the token-like run it sits in and a margin more,
// so a rule finds there whatever it would find in the whole decoded buffer.

// reachMargin is how far around a decoded span a rule may look for the rest
// of its finding: an AWS secret key up to 256 characters from its key id
// (20) and 41 characters long, with room to spare.
const reachMargin = 320

// tokenBytes are the bytes a format token can hold: those of both base64
// alphabets, '=' and '.', PEM headers' spaces and bodies' line breaks, and
// '%', which the percent layer decodes. A JSON \uXXXX escape of one of them
// is decoded and the region around it scanned again; an escape of any other
// byte (a '<' from Go's encoder, a non-ASCII letter) can only end a token.
var tokenBytes = func() (t [256]bool) {
	for c := range 256 {
		t[c] = base64Chars[c] || bytes.IndexByte([]byte("=.% \t\r\n"), byte(c)) >= 0
	}
	return t
}()

// runBytes are the bytes of a token-like run: base64 (either alphabet),
// dots and padding, percent escapes and JSON escapes.
var runBytes = func() (t [256]bool) {
	for c := range 256 {
		t[c] = base64Chars[c] || bytes.IndexByte([]byte(".=%\\"), byte(c)) >= 0
	}
	return t
}()

// jsonRegions returns the spans of buf to JSON-decode and scan again: around
// every escape whose decoding can be part of a token or a literal (its byte
// is in tokenBytes or a literal; a "\/"; a "\\" before '/' or 'u', which
// the next decoding turns into one), and around every occurrence of a
// regular expression's literal prefix with an escape near it. Escapes that
// decode to separators (the "\n" and "\"" that fill JSON strings, non-ASCII
// letters) are left alone: decoded, they only end or start a token, and
// the rules read them in place (prevByte, afterEscape).
func (s *Scanner) jsonRegions(buf []byte, hits [][]int) []span {
	if bytes.IndexByte(buf, '\\') < 0 {
		return nil
	}
	var cores []core
	decodes := false
	next := 0 // buf[:next] is done with
	// The run of runBytes around the last escape decoded, walked once for
	// all the escapes in it.
	runStart, runEnd := 0, 0
	escape := func(p int) {
		if p < next || p+1 >= len(buf) {
			return
		}
		r, n := unescapeAt(buf[p:])
		if n == 0 {
			return
		}
		decodes, next = true, p+n
		if !s.revealing(buf, p+n, r, n) {
			return
		}
		if p >= runEnd {
			runStart, runEnd = p, p+n
			for runStart > 0 && runBytes[buf[runStart-1]] {
				runStart--
			}
			for runEnd < len(buf) && runBytes[buf[runEnd]] {
				runEnd++
			}
		}
		after := reachMargin
		if r < utf8.RuneSelf && s.rePrefixBytes[r] {
			after = formatWindow // it may start a regular expression's match
		}
		lo, hi := max(runStart, p-formatWindow), min(runEnd, p+n+formatWindow)
		cores = addCore(cores, core{lo, hi, min(hi+after, len(buf))})
	}
	// Where escapes come every few words, as in a JSON string of code, find
	// them a word at a time; where they are sparse, as in prose, let
	// IndexByte skip to the next. Most are the \n and \" that fill JSON
	// strings, passed over here; escape looks at the rest.
	sep := &s.sepEscape
	for k := 0; k < len(buf); {
		j := bytes.IndexByte(buf[k:], '\\')
		if j < 0 {
			break
		}
		k += j
		for idle := 0; idle < 4 && k+8 <= len(buf); k += 8 {
			m := equalBytes(binary.LittleEndian.Uint64(buf[k:]), '\\')
			if m == 0 {
				idle++
			}
			for ; m != 0; m &= m - 1 {
				p := k + bits.TrailingZeros64(m)/8
				if p+2 < len(buf) && p >= next && (sep[buf[p+1]] || buf[p+1] == '\\' && s.sepBackslash[buf[p+2]]) {
					decodes, next = true, p+2
					continue
				}
				escape(p)
			}
		}
		if k+8 > len(buf) {
			for ; k < len(buf); k++ {
				if buf[k] == '\\' {
					escape(k)
				}
			}
		}
	}
	spans, all := s.regexWindows(buf, '\\', hits, regions(buf, cores))
	if all && decodes {
		return []span{{0, len(buf)}}
	}
	return merge(spans)
}

// regexWindows adds to spans a window around each occurrence of a regular
// expression's literal prefix (at hits, see prefixHits) with the byte c
// (that starts an escape) in it: a window's length, which a match should
// not exceed. It reports all when a regular expression has no literal
// prefix, and any escape in buf may change what it matches.
func (s *Scanner) regexWindows(buf []byte, c byte, hits [][]int, spans []span) (_ []span, all bool) {
	for i, re := range s.regexes {
		if re.prefix == "" {
			return nil, true
		}
		// Overlapping windows are joined before they are looked at, so a
		// body full of the prefix costs one pass.
		w := span{-1, -1}
		flush := func() {
			if w.start >= 0 && bytes.IndexByte(buf[w.start:w.end], c) >= 0 {
				spans = append(spans, w)
			}
		}
		for _, at := range hits[i] {
			lo, hi := max(at-6, 0), min(at+formatWindow, len(buf))
			if w.start >= 0 && lo <= w.end {
				w.end = hi
				continue
			}
			flush()
			w = span{lo, hi}
		}
		flush()
	}
	return spans, false
}

// prefixHits returns where each regular expression's literal prefix occurs
// in buf (nothing for one without a prefix).
func (s *Scanner) prefixHits(buf []byte) [][]int {
	if len(s.regexes) == 0 {
		return nil
	}
	hits := make([][]int, len(s.regexes))
	for i, re := range s.regexes {
		for at := 0; re.prefix != ""; at++ {
			k := bytes.Index(buf[at:], []byte(re.prefix))
			if k < 0 {
				break
			}
			at += k
			hits[i] = append(hits[i], at)
		}
	}
	return hits
}

// revealing reports whether the escape before buf[next], of n bytes and
// decoding to r, is decoded for the JSON layer.
func (s *Scanner) revealing(buf []byte, next int, r rune, n int) bool {
	switch {
	case r == '\\':
		if next < len(buf) && (buf[next] == '/' || buf[next] == 'u' && next+5 <= len(buf) && isHex4(buf[next+1:next+5])) {
			return true
		}
		return s.litBytes['\\']
	case n == 2:
		return r == '/' || s.litBytes[r]
	case r < utf8.RuneSelf:
		return tokenBytes[r] || s.litBytes[r]
	}
	for _, c := range utf8.AppendRune(nil, r) {
		if s.litBytes[c] {
			return true
		}
	}
	return false
}

// equalBytes has the high bit set for each byte of w equal to c.
func equalBytes(w uint64, c byte) uint64 {
	x := w ^ ones*uint64(c)
	return ^((x&^highs + 0x7f7f7f7f7f7f7f7f) | x) & highs
}

func isHex4(b []byte) bool {
	_, ok := hex4(b)
	return ok
}

// core is what a region must hold around the escapes in it: lo to hi, the
// escapes and the runs of runBytes they are in (at most a window each way),
// and up to to, where a match starting in it may end.
type core struct{ lo, hi, to int }

// addCore appends c to cores, found in order of lo, joining it to the last
// if they overlap.
func addCore(cores []core, c core) []core {
	if n := len(cores); n > 0 && c.lo <= cores[n-1].to {
		last := &cores[n-1]
		last.hi, last.to = max(last.hi, c.hi), max(last.to, c.to)
		return cores
	}
	return append(cores, c)
}

// regions returns the span to decode for each core: reachMargin more
// before it and on to its to, widened by five bytes for each backslash in
// the margins (as much as a JSON escape can add, up to another margin),
// then on to the ends of the runs cut there (at most a window each way),
// so a token is not cut short.
func regions(buf []byte, cores []core) []span {
	spans := make([]span, 0, len(cores))
	for _, c := range cores {
		from, to := max(c.lo-reachMargin, 0), c.to
		from = max(from-min(5*bytes.Count(buf[from:c.lo], []byte{'\\'}), reachMargin), 0)
		to = min(to+min(5*bytes.Count(buf[c.hi:to], []byte{'\\'}), reachMargin), len(buf))
		for n := 0; from > 0 && n < formatWindow && runBytes[buf[from-1]]; n++ {
			from--
		}
		for n := 0; to < len(buf) && n < formatWindow && runBytes[buf[to]]; n++ {
			to++
		}
		spans = append(spans, span{from, to})
	}
	return spans
}

// merge sorts spans and joins those that overlap or touch.
func merge(spans []span) []span {
	if len(spans) < 2 {
		return spans
	}
	slices.SortFunc(spans, func(a, b span) int { return a.start - b.start })
	out := spans[:1]
	for _, sp := range spans[1:] {
		last := &out[len(out)-1]
		if sp.start <= last.end {
			last.end = max(last.end, sp.end)
			continue
		}
		out = append(out, sp)
	}
	return out
}

// percentRegions returns the spans of buf to percent-decode and scan
// again: around every run (between URL delimiters) with a percent escape
// that decodes, a margin either side.
func (s *Scanner) percentRegions(buf []byte, hits [][]int) []span {
	if bytes.IndexByte(buf, '%') < 0 {
		return nil
	}
	var spans []span
	after := reachMargin
	if len(s.regexes) > 0 {
		after = formatWindow // a decoded run may start a regular expression's match
	}
	for i := 0; ; {
		start, end, ok := percentRun(buf, i)
		if !ok {
			break
		}
		if validPercent(buf[start:end], end == len(buf)) {
			from, to := max(start-reachMargin, 0), min(end+after, len(buf))
			for from > 0 && !urlDelim(buf[from-1]) {
				from--
			}
			for to < len(buf) && !urlDelim(buf[to]) {
				to++
			}
			spans = append(spans, span{from, to})
		}
		i = end
	}
	decodes := len(spans) > 0
	spans, all := s.regexWindows(buf, '%', hits, spans)
	if all && decodes {
		return []span{{0, len(buf)}}
	}
	return merge(spans)
}

// validPercent reports whether url.QueryUnescape accepts run: every '%' is
// followed by two hex digits (but for an escape cut short at the end of the
// buffer, which percentDecode drops).
func validPercent(run []byte, atEnd bool) bool {
	if p := bytes.LastIndexByte(run, '%'); atEnd && p > len(run)-3 {
		run = run[:p]
	}
	for i := 0; ; {
		k := bytes.IndexByte(run[i:], '%')
		if k < 0 {
			return true
		}
		p := i + k
		if p+2 >= len(run) || !isHexDigit(run[p+1]) || !isHexDigit(run[p+2]) {
			return false
		}
		i = p + 3
	}
}

func isHexDigit(c byte) bool { return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }
