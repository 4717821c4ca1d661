package dlp

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
)

// form is one byte string the matcher looks for on behalf of a literal,
// with the encoding a match of it reveals.
type form struct {
	text     []byte
	encoding string
}

// encodedForms lists the byte strings that betray v when it is sent plain,
// percent-encoded, JSON-escaped or base64-encoded.
//
// Literals (known secrets, canaries, extra literals) are few and fixed, so
// their encodings are precomputed and added to the one matcher (matcher.go):
// a single pass over the body then finds every literal in every encoding,
// with no need to find, align and decode candidate spans first. That also
// catches what span decoding misses: base64 glued to other base64-alphabet
// text (so the run's start is not the encoding's start), a run cut by a
// stream window, or an encoder that escapes only some characters. Decoding
// spans and rescanning (decode.go) remains for the format rules, whose
// matches cannot be enumerated in advance.
func encodedForms(v []byte) []form {
	var forms []form
	seen := map[string]bool{}
	add := func(text []byte, encoding string) {
		if len(text) == 0 || seen[string(text)] {
			return
		}
		seen[string(text)] = true
		forms = append(forms, form{text: text, encoding: encoding})
	}
	add(v, encodingPlain)

	// Percent-encoding as url.QueryEscape (form bodies, query strings: space
	// becomes '+') and url.PathEscape write it, and the every-byte %XX form
	// an encoder (or an evasive agent) may use, in both hex cases.
	add([]byte(url.QueryEscape(string(v))), "url")
	add([]byte(url.PathEscape(string(v))), "url")
	add(percentAll(v, "%%%02X"), "url")
	add(percentAll(v, "%%%02x"), "url")

	// JSON escaping: encoding/json's (which escapes <, > and & as \u00XX),
	// the same without HTML escaping, JavaScript's optional "\/", and every
	// character as \u00XX in both hex cases.
	add(jsonEscape(v, true), "json")
	add(jsonEscape(v, false), "json")
	add(bytes.ReplaceAll(jsonEscape(v, false), []byte("/"), []byte(`\/`)), "json")
	add(percentAll(v, `\u%04x`), "json")
	add(percentAll(v, `\u%04X`), "json")

	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		for align := range 3 {
			add(base64Stable(enc, v, align), "base64")
		}
	}
	return forms
}

// percentAll writes every byte of v with format (one %02X-style verb).
func percentAll(v []byte, format string) []byte {
	var b bytes.Buffer
	for _, c := range v {
		fmt.Fprintf(&b, format, c)
	}
	return b.Bytes()
}

// jsonEscape returns v as the inside of a JSON string.
func jsonEscape(v []byte, escapeHTML bool) []byte {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(escapeHTML)
	_ = e.Encode(string(v)) // encoding a string cannot fail
	out := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	return out[1 : len(out)-1]
}

// base64Stable returns the part of the base64 encoding of v that is the same
// whatever surrounds v, when v starts at byte offset align (0, 1 or 2) of a
// 3-byte group of the encoded plaintext. Characters that mix bits of v with
// bits of the unknown neighbouring bytes differ from one message to the next,
// so the stable part is the encoding of v's whole groups only: skip the bytes
// that complete the group v starts in, and drop the partial group at the end.
// Padding never appears inside the stable part, so one form serves encodings
// with and without it.
func base64Stable(enc *base64.Encoding, v []byte, align int) []byte {
	skip := (3 - align) % 3
	if len(v)-skip < 3 {
		return nil
	}
	whole := v[skip:]
	whole = whole[:len(whole)/3*3]
	return []byte(enc.EncodeToString(whole))
}
