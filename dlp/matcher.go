package dlp

import (
	"bytes"
	"encoding/binary"
	"math/bits"
)

// matcher finds every occurrence of the scanner's patterns in a buffer in
// one pass over it, without looking at every byte position.
//
// Per byte, an automaton costs a dependent table load (about 1.5 ns on the
// 2-core test machine, over 100 µs for a 64 KiB body); this matcher looks at
// one position in 4 or 8 and at the few places a token can start. It relies
// on two facts about the patterns:
//
//   - Literal forms and the long format prefixes are at least 7 bytes (11
//     for stride 8), so every occurrence covers a sampled position p, a
//     multiple of the stride, with a whole 4-byte gram of the pattern at p
//     (at offset p-start < stride). A bitmap of those grams' hashes rejects
//     almost every sampled position; a hit is looked up by its exact gram.
//   - The short format prefixes (AKIA, ghp_, sk-, xoxb-, eyJ…) belong to
//     rules that report only a token that starts a word (see rule.wordStart)
//     and is a run of at least minTokenRun bytes of [A-Za-z0-9_-]. Such a
//     run lies in a run of base64-alphabet bytes that holds a whole aligned
//     8-byte block, so the matcher tests blocks (a few word-wide operations
//     each), and where one is all base64 it walks that run and tries the
//     short prefixes at its word starts only.
//
// The base64 runs it walks are handed to the caller too: they are the runs
// the base64 layer decodes.
type matcher struct {
	texts  [][]byte // pattern text by id
	stride int      // 8, or 4 when a gram-filtered pattern is shorter than 11 bytes
	filter []uint64 // 1<<gramBits bits, one per gram hash
	grams  map[uint32]*gramEntry
	starts [256][]int32 // word-start prefixes by first byte
}

type gramRef struct {
	id  int32 // pattern
	off int32 // where in the pattern the gram starts
}

// gramEntry holds the patterns with a given gram. Some grams are in many
// patterns ("\u00" in every \u-escaped form), so when there are more than
// a few, those long enough are also keyed by the 4 bytes after the gram: a
// body full of that gram costs a lookup per sampled position, not a
// comparison with each of them.
type gramEntry struct {
	refs   []gramRef
	byNext map[uint32][]gramRef
}

const (
	// gramBits sizes the gram filter: 2^17 bits, 16 KiB. The fixture's 220
	// patterns, 8 grams each, set about 1% of its bits; with 200 known
	// secrets (3,200 forms) a Codex body scans only about 8% slower.
	gramBits = 17
	// minTokenRun is the shortest token, in [A-Za-z0-9_-] bytes from its
	// start, that a word-start rule reports (a JWT header of 15 characters;
	// every other such token is 20 or more).
	minTokenRun = 15
	// gramLen is the length of a gram, one 32-bit load. A pattern is found
	// at stride k if it is at least k+gramLen-1 bytes long: 11 at stride 8,
	// and 7 at stride 4, less than every literal form (MinLiteralLen, 8) and
	// prefix the gram filter is given.
	gramLen = 4
)

// newMatcher builds a matcher over patterns, finding each by the gram filter
// unless wordStart[id] is set.
func newMatcher(texts [][]byte, wordStart []bool) *matcher {
	m := &matcher{texts: texts, stride: 8, filter: make([]uint64, 1<<gramBits/64), grams: map[uint32]*gramEntry{}}
	for id, t := range texts {
		if !wordStart[id] && len(t) < 8+gramLen-1 {
			m.stride = 4
		}
	}
	for id, t := range texts {
		if wordStart[id] {
			m.starts[t[0]] = append(m.starts[t[0]], int32(id))
			continue
		}
		for off := range m.stride {
			g := binary.LittleEndian.Uint32(t[off:])
			h := gramHash(g)
			m.filter[h/64] |= 1 << (h % 64)
			if m.grams[g] == nil {
				m.grams[g] = &gramEntry{}
			}
			m.grams[g].refs = append(m.grams[g].refs, gramRef{int32(id), int32(off)})
		}
	}
	for _, e := range m.grams {
		if len(e.refs) <= 4 {
			continue
		}
		var short []gramRef
		e.byNext = map[uint32][]gramRef{}
		for _, r := range e.refs {
			t := texts[r.id]
			if int(r.off)+2*gramLen > len(t) {
				short = append(short, r)
				continue
			}
			next := binary.LittleEndian.Uint32(t[r.off+gramLen:])
			e.byNext[next] = append(e.byNext[next], r)
		}
		e.refs = short
	}
	return m
}

func gramHash(g uint32) uint32 { return (g * 0x9E3779B1) >> (32 - gramBits) }

// find calls match for every occurrence of a pattern in buf (roughly in
// order of position), and run for every run of at least minBase64Run
// base64-alphabet bytes (either alphabet, no padding).
func (m *matcher) find(buf []byte, match func(id, start int), run func(start, end int)) {
	n := len(buf)
	filter := m.filter[:1<<gramBits/64]
	next := 0 // buf[:next] is covered by a run already walked
	k := 0
	for ; k+8 <= n; k += 8 {
		w := binary.LittleEndian.Uint64(buf[k:])
		if h := gramHash(uint32(w)); filter[h/64]&(1<<(h%64)) != 0 {
			m.lookup(buf, k, uint32(w), match)
		}
		if m.stride == 4 {
			if h := gramHash(uint32(w >> 32)); filter[h/64]&(1<<(h%64)) != 0 {
				m.lookup(buf, k+4, uint32(w>>32), match)
			}
		}
		if k >= next && maybeBase64(w) && allBase64(buf[k:k+8]) {
			next = m.walkRun(buf, k, match, run)
		}
	}
	for ; k+4 <= n; k += m.stride {
		g := binary.LittleEndian.Uint32(buf[k:])
		if h := gramHash(g); filter[h/64]&(1<<(h%64)) != 0 {
			m.lookup(buf, k, g, match)
		}
	}
}

// lookup checks the patterns whose gram at some offset is g, found at p.
func (m *matcher) lookup(buf []byte, p int, g uint32, match func(id, start int)) {
	e := m.grams[g]
	if e == nil {
		return // a hash collision
	}
	m.check(buf, p, e.refs, match)
	if e.byNext != nil && p+2*gramLen <= len(buf) {
		m.check(buf, p, e.byNext[binary.LittleEndian.Uint32(buf[p+gramLen:])], match)
	}
}

func (m *matcher) check(buf []byte, p int, refs []gramRef, match func(id, start int)) {
	for _, r := range refs {
		t := m.texts[r.id]
		start := p - int(r.off)
		if start >= 0 && start+len(t) <= len(buf) && bytes.Equal(buf[start:start+len(t)], t) {
			match(int(r.id), start)
		}
	}
}

// walkRun walks the base64-alphabet run around the all-base64 block at k,
// tries the word-start prefixes at each word start in it, reports the run
// if it is long enough to decode, and returns its end.
//
// Word starts are the run's start and the bytes after '+', '-' and '/',
// the run's only bytes that are not word bytes. A run right after a
// backslash may start with the rest of a JSON escape ("\n", "\u00e9"),
// which decodes to a separator: the token after it starts a word too.
func (m *matcher) walkRun(buf []byte, k int, match func(id, start int), run func(start, end int)) int {
	start := k
	for start > 0 && base64Chars[buf[start-1]] {
		start--
	}
	m.tryStart(buf, start, match)
	if s := afterEscape(buf, start); s > start {
		m.tryStart(buf, s, match)
	}
	// Try the bytes after '+', '-' and '/' (the base64 bytes below '0')
	// up to the block at k, then on block by block to the run's end.
	end := start
	for ; end < k; end++ {
		if buf[end] < '0' {
			m.tryStart(buf, end+1, match)
		}
	}
	for ; end+8 <= len(buf) && allBase64(buf[end:end+8]); end += 8 {
		for seps := below0(binary.LittleEndian.Uint64(buf[end:])); seps != 0; seps &= seps - 1 {
			m.tryStart(buf, end+bits.TrailingZeros64(seps)/8+1, match)
		}
	}
	for ; end < len(buf) && base64Chars[buf[end]]; end++ {
		if buf[end] < '0' {
			m.tryStart(buf, end+1, match)
		}
	}
	if end-start >= minBase64Run {
		run(start, end)
	}
	return end
}

// tryStart reports the word-start prefixes found at p. A token of a
// word-start rule runs on for minTokenRun bytes of the run; a shorter run is
// tried all the same, the rule's check decides.
func (m *matcher) tryStart(buf []byte, p int, match func(id, start int)) {
	if p >= len(buf) {
		return
	}
	for _, id := range m.starts[buf[p]] {
		if bytes.HasPrefix(buf[p:], m.texts[id]) {
			match(int(id), p)
		}
	}
}

// afterEscape returns where the run starting at i really starts when the
// byte before it is a backslash: after the JSON escape that backslash
// begins. It returns i when there is none.
func afterEscape(buf []byte, i int) int {
	if i == 0 || buf[i-1] != '\\' || i >= len(buf) {
		return i
	}
	if _, n := unescapeAt(buf[i-1:]); n > 0 {
		return i - 1 + n
	}
	return i
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// maybeBase64 reports whether every byte of w is in '+'..'z', which holds
// both base64 alphabets; allBase64 then decides exactly. Most blocks of
// prose, code or JSON have a space, quote or comma and stop here.
func maybeBase64(w uint64) bool {
	x := w &^ highs
	ge := x + ones*(0x80-'+') // high bit set where the byte is >= '+'
	gt := x + ones*(0x7f-'z') // high bit set where the byte is > 'z'
	return ge&^gt&^w&highs == highs
}

// below0 has the high bit of each byte of w (all base64 bytes) that is
// below '0', that is '+', '-' or '/'.
func below0(w uint64) uint64 {
	return ^(w + ones*(0x80-'0')) & highs
}

func allBase64(b []byte) bool {
	_ = b[7]
	return base64Chars[b[0]] && base64Chars[b[1]] && base64Chars[b[2]] && base64Chars[b[3]] &&
		base64Chars[b[4]] && base64Chars[b[5]] && base64Chars[b[6]] && base64Chars[b[7]]
}
