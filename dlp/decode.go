package dlp

import (
	"bytes"
	"encoding/base64"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Format rules cannot be precomputed in every encoding (their matches are not
// known in advance), so the scanner finds spans that look encoded, decodes
// them and scans the result again, up to maxDepth nested encodings and within
// a byte budget (see scan.budget).
const (
	maxDepth = 3
	// minBase64Run is the shortest base64 run decoded: 24 characters are 18
	// bytes, less than the shortest format token (an AWS key id, 20 bytes),
	// so a token is never missed for being short, and the many shorter
	// words and identifiers made of base64 letters are not decoded.
	minBase64Run = 24
)

// jsonUnescape decodes JSON string escapes (\" \\ \/ \b \f \n \r \t \uXXXX,
// with surrogate pairs) wherever they occur in buf and leaves every other byte
// as it is. It is lenient on purpose: a stream window or a non-JSON body can
// start in the middle of a string, where a strict decoder (encoding/json,
// which needs the opening quote) cannot tell escapes from text. It returns
// nil when buf has no escape.
func jsonUnescape(buf []byte) []byte {
	i := bytes.IndexByte(buf, '\\')
	if i < 0 {
		return nil
	}
	out := make([]byte, 0, len(buf))
	for i >= 0 {
		out = append(out, buf[:i]...)
		buf = buf[i:]
		n := 1
		if len(buf) > 1 {
			var r rune
			if r, n = unescapeAt(buf); n > 0 {
				out = utf8.AppendRune(out, r)
			} else {
				n = 1
				out = append(out, '\\')
			}
		} else {
			out = append(out, '\\')
		}
		buf = buf[n:]
		i = bytes.IndexByte(buf, '\\')
	}
	return append(out, buf...)
}

// unescapeAt decodes the escape at the start of b and returns the rune and
// the bytes it took, or n == 0 when b does not start with a valid escape.
func unescapeAt(b []byte) (r rune, n int) {
	switch b[1] {
	case '"', '\\', '/':
		return rune(b[1]), 2
	case 'b':
		return '\b', 2
	case 'f':
		return '\f', 2
	case 'n':
		return '\n', 2
	case 'r':
		return '\r', 2
	case 't':
		return '\t', 2
	case 'u':
		r1, ok := hex4(b[2:])
		if !ok {
			return 0, 0
		}
		if utf16.IsSurrogate(r1) && len(b) >= 12 && b[6] == '\\' && b[7] == 'u' {
			if r2, ok := hex4(b[8:]); ok {
				if r := utf16.DecodeRune(r1, r2); r != utf8.RuneError {
					return r, 12
				}
			}
		}
		return r1, 6
	}
	return 0, 0
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		v := hexValues[c]
		if v < 0 {
			return 0, false
		}
		r = r<<4 | rune(v)
	}
	return r, true
}

// hexValues holds the value of each hex digit, -1 for other bytes.
var hexValues = func() (t [256]int8) {
	for c := range 256 {
		t[c] = -1
	}
	for i, c := range []byte("0123456789abcdef") {
		t[c] = int8(i)
	}
	for i, c := range []byte("ABCDEF") {
		t[c] = int8(10 + i)
	}
	return t
}()

// urlDelims marks the bytes that end a run percent-decoding considers: bytes
// that are not part of an encoded URL component, including the query's own &
// and =, so a form body or query string decodes value by value. A table,
// because this is asked of every byte of every body with a '%' in it.
var urlDelims = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c <= ' ' || c >= 0x7f || strings.IndexByte("\"'<>\\{}|^`&=?#", byte(c)) >= 0
	}
	return t
}()

func urlDelim(c byte) bool { return urlDelims[c] }

// percentDecode returns buf with every run that contains a percent escape
// unescaped as url.QueryUnescape does ('+' is a space there, as in forms and
// query strings) and the delimiters kept, or nil when nothing decoded. A
// run that does not unescape (a stray '%') is kept as it is; an escape cut
// short at a window's end is dropped.
func percentDecode(buf []byte) []byte {
	var out []byte
	done := 0 // buf[:done] has been copied or decoded into out
	for i := 0; ; {
		start, end, ok := percentRun(buf, i)
		if !ok {
			break
		}
		run := buf[start:end]
		if p := bytes.LastIndexByte(run, '%'); end == len(buf) && p > len(run)-3 {
			run = run[:p]
		}
		if validPercent(run, false) {
			if out == nil {
				out = make([]byte, 0, len(buf))
			}
			out = appendUnescaped(append(out, buf[done:start]...), run)
			done = end
		}
		i = end
	}
	if out == nil {
		return nil
	}
	return append(out, buf[done:]...)
}

// percentRun finds the first '%' in buf[i:] and returns the run around it,
// the bytes between URL delimiters; ok is false when there is none. i is 0
// or the end of the previous run, a delimiter, so runs never overlap.
func percentRun(buf []byte, i int) (start, end int, ok bool) {
	k := bytes.IndexByte(buf[i:], '%')
	if k < 0 {
		return 0, 0, false
	}
	start, end = i+k, i+k
	for start > i && !urlDelim(buf[start-1]) {
		start--
	}
	for end < len(buf) && !urlDelim(buf[end]) {
		end++
	}
	return start, end, true
}

// appendUnescaped appends run, every '%' in it followed by two hex digits
// (validPercent), unescaped as url.QueryUnescape does.
func appendUnescaped(out, run []byte) []byte {
	for i := 0; i < len(run); i++ {
		switch c := run[i]; c {
		case '%':
			out = append(out, byte(hexValues[run[i+1]])<<4|byte(hexValues[run[i+2]]))
			i += 2
		case '+':
			out = append(out, ' ')
		default:
			out = append(out, c)
		}
	}
	return out
}

// base64Decode decodes the runs of at least minBase64Run base64 characters
// (either alphabet; padding optional) that the matcher found in buf and
// returns the results joined by newlines, a boundary for every rule that a
// PEM body or an AWS secret's keyword still reads across. When cut is set,
// buf starts in the middle of its text, which may have cut a run anywhere,
// so a run at its start is also decoded from each of its other three
// offsets.
//
// A run right after a JSON escape's backslash starts with the rest of the
// escape ("\nQUJD…" is a line break, then a run from 'Q'): out has it
// decoded from after the escape, as the JSON-decoded body would have it.
// When there is such a run, raw has every run decoded from its first byte,
// as the body is written. Each is decoded in sequence with the runs around
// it, so that the lines of a wrapped base64 text are read one after the
// other.
func base64Decode(buf []byte, runs []span, cut bool) (out, raw []byte) {
	escaped := false
	for _, r := range runs {
		start := r.start
		if s := afterEscape(buf, r.start); s != r.start && !base64Chars[prevByte(buf, s)] {
			start, escaped = s, true
		}
		out = decodeRuns(out, buf[start:r.end], cut && r.start == 0)
	}
	if escaped {
		for _, r := range runs {
			raw = decodeRuns(raw, buf[r.start:r.end], cut && r.start == 0)
		}
	}
	return out, raw
}

// decodeRuns appends the decoding of run and a newline to out if the run is
// long enough, and when cut, its decodings from its second to fourth bytes.
func decodeRuns(out, run []byte, cut bool) []byte {
	offsets := 1
	if cut {
		offsets = 4
	}
	for off := range offsets {
		if len(run)-off >= minBase64Run {
			out = append(decodeRun(out, run[off:]), '\n')
		}
	}
	return out
}

// base64Chars marks both base64 alphabets (padding excluded).
var base64Chars = func() (t [256]bool) {
	for c := range 256 {
		t[c] = isB64Std(byte(c)) || c == '-' || c == '_'
	}
	return t
}()

// decodeRun appends the decoding of run to out. A run in one alphabet is
// decoded as it is; one mixing both is mapped onto the standard alphabet
// first, so it decodes too. A final lone character (6 bits, never a whole
// byte) is dropped.
func decodeRun(out, run []byte) []byte {
	if len(run)%4 == 1 {
		run = run[:len(run)-1]
	}
	enc := base64.RawStdEncoding
	switch urlSafe := bytes.IndexByte(run, '-') >= 0 || bytes.IndexByte(run, '_') >= 0; {
	case urlSafe && bytes.IndexByte(run, '+') < 0 && bytes.IndexByte(run, '/') < 0:
		enc = base64.RawURLEncoding
	case urlSafe:
		std := make([]byte, len(run))
		for k, c := range run {
			switch c {
			case '-':
				c = '+'
			case '_':
				c = '/'
			}
			std[k] = c
		}
		run = std
	}
	n := len(out)
	out = slices.Grow(out, enc.DecodedLen(len(run)))
	m, _ := enc.Decode(out[n:n+enc.DecodedLen(len(run))], run) // only valid characters reach here
	return out[:n+m]
}
